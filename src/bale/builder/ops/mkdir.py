"""WORKDIR's directory inside a rootfs (links resolved there), made as BuildKit makes it:
0755, with its missing parents owned by the stage's USER."""

from __future__ import annotations

import os
import stat

from bale.builder.users import resolve_user, set_owner
from bale.errors import InvalidArgument
from bale.frontends.graph import MkdirOp
from bale.store.layers.rootpath import resolve

# Linux's PATH_MAX: a longer WORKDIR could never be entered by a step.
_PATH_MAX = 4096


def run_mkdir(rootfs: str, op: MkdirOp) -> None:
    shown = op.path if len(op.path) <= 120 else op.path[:120] + "…"
    if len(op.path) >= _PATH_MAX:
        raise InvalidArgument(
            f"WORKDIR {shown}: file name too long ({len(op.path)} bytes)",
            hint=f"a path is at most {_PATH_MAX - 1} bytes",
        )
    owner = resolve_user(rootfs, op.user) if op.user else None
    # One walk down the path: each component is looked at once (a link is resolved from
    # where the walk is), so a path of thousands of components costs its length.
    host = rootfs
    for part in (p for p in op.path.split("/") if p):
        target = os.path.join(host, part)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            os.mkdir(target, 0o755)
            if owner is not None:
                set_owner(target, owner.uid, owner.gid)
            host = target
            continue
        if stat.S_ISLNK(st.st_mode):
            target = resolve(rootfs, os.path.relpath(target, rootfs), follow_final=True)
            if not os.path.lexists(target):
                os.makedirs(target, 0o755)
                if owner is not None:
                    set_owner(target, owner.uid, owner.gid)
        if not os.path.isdir(target):
            current = os.path.relpath(target, rootfs)
            raise InvalidArgument(f"WORKDIR {shown}: /{current} exists and is not a directory")
        host = target
