"""USER resolution: names and ids through the rootfs's own /etc/passwd and /etc/group."""

from __future__ import annotations

from dataclasses import dataclass

from bale.errors import InvalidArgument
from bale.store.layers.rootpath import resolve


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


def _read_table(rootfs: str, path: str) -> list[list[str]]:
    try:
        host = resolve(rootfs, path, follow_final=True)
        with open(host, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []


def resolve_user(rootfs: str, user: str) -> Identity:
    """`user` ("", name, uid, name:group, uid:gid) as numeric ids, like Docker and BuildKit."""
    user = user.strip()
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _read_table(rootfs, "etc/passwd")
    uid: int | None = None
    gid: int | None = None
    home = "/"
    entry = next((r for r in passwd if len(r) >= 4 and (r[0] == name or r[2] == name)), None)
    if entry is not None:
        uid, gid = int(entry[2]), int(entry[3])
        home = entry[5] if len(entry) > 5 and entry[5] else "/"
    elif name.isdigit():
        uid, gid = int(name), 0 if not group else None
    else:
        raise InvalidArgument(
            f"unable to find user {name}: no matching entries in passwd file",
            hint="add the user to /etc/passwd in an earlier step or use a numeric uid",
        )
    groups_table = _read_table(rootfs, "etc/group")
    if group:
        found = next((r for r in groups_table if len(r) >= 3 and r[0] == group), None)
        if found is not None:
            gid = int(found[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise InvalidArgument(
                f"unable to find group {group}: no matching entries in group file"
            )
    assert uid is not None
    if gid is None:
        gid = 0
    extra: list[int] = []
    if not group and entry is not None:
        # Supplementary groups listing the user by name, as login would set them.
        for row in groups_table:
            if len(row) >= 4 and entry[0] in row[3].split(",") and row[2].isdigit():
                g = int(row[2])
                if g != gid and g not in extra:
                    extra.append(g)
    return Identity(uid=uid, gid=gid, groups=tuple(extra), home=home)
