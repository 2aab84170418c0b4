"""Paths resolved inside a root directory as if it were `/`: nothing can lead out of it.

Symlinks met on the way are followed with the root as `/` (absolute targets restart at the
root, `..` stops at it), the way a chroot would see them. This is what keeps hostile layer
entries (`../x`, `/etc/x`, `link-to-etc/passwd`) inside the rootfs being written.
"""

from __future__ import annotations

import os
import stat

from bale.errors import InvalidArgument

_MAX_LINKS = 40


def clean(name: str) -> str:
    """A tar member name as a relative path with `.`, `..` and slashes resolved lexically."""
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    parts = name.split("/")
    if "" not in parts and "." not in parts and ".." not in parts:
        return name  # already clean, as nearly every name is
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/".join(out)


def resolve(root: str, path: str, *, follow_final: bool = False, create_dirs: bool = False) -> str:
    """The host path of `path` (relative to `root`), never outside `root`.

    `follow_final` also follows a symlink in the last component. `create_dirs` makes missing
    intermediate directories (mode 0755) so a member can be written below them. Linear in
    the number of components: a hostile path of thousands of them costs no more than its length.
    """
    # Components still to walk, last first (popping from the end is O(1)).
    todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    resolved: list[str] = []
    # hosts[i] is the host path of resolved[:i], so `..` is O(1) too.
    hosts = [root]
    links = 0
    while todo:
        name = todo.pop()
        if name == "..":
            if resolved:
                resolved.pop()
                hosts.pop()
            continue
        last = not todo
        candidate = os.path.join(hosts[-1], name)
        if last and not follow_final:
            return candidate
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            if create_dirs and not last:
                os.mkdir(candidate, 0o755)
            resolved.append(name)
            hosts.append(candidate)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise InvalidArgument(f"too many levels of symbolic links in {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
                hosts = [root]
            todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
            continue
        if not last and not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"{path!r}: {'/'.join([*resolved, name])!r} is not a directory")
        resolved.append(name)
        hosts.append(candidate)
    return hosts[-1]
