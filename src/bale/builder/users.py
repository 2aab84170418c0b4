"""Users and groups through a rootfs's own /etc/passwd and /etc/group: USER for RUN, and the
owners COPY --chown and WORKDIR give. The one place that reads those tables; entries with
ids that are not numbers in range are ignored, never a crash."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bale.errors import InvalidArgument
from bale.store.layers.rootpath import resolve

MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to chown(2)


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


def set_owner(path: str, uid: int, gid: int) -> None:
    """lchown; without root a file keeps the builder's own ids (nothing else is possible)."""
    try:
        os.lchown(path, uid, gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise


def numeric_id(text: str) -> int | None:
    """A uid/gid written as ASCII digits and in range, else None (`²` is a digit to Python)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _read_table(rootfs: str, path: str) -> list[list[str]]:
    try:
        host = resolve(rootfs, path, follow_final=True)
        with open(host, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []


def _valid_rows(rows: list[list[str]], fields: int, ids: tuple[int, ...]) -> list[list[str]]:
    return [r for r in rows if len(r) >= fields and all(numeric_id(r[i]) is not None for i in ids)]


def _bad_id(text: str, what: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid {what} {text!r}: ids are numbers from 0 to {MAX_ID}",
        hint=f"use a {what} name from the image's /etc/{'passwd' if what == 'user' else 'group'}"
        " or a number in range",
    )


def resolve_user(rootfs: str, user: str) -> Identity:
    """`user` ("", name, uid, name:group, uid:gid) as numeric ids, like Docker and BuildKit."""
    user = user.strip()
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _valid_rows(_read_table(rootfs, "etc/passwd"), 4, (2, 3))
    uid: int | None = None
    gid: int | None = None
    home = "/"
    entry = next((r for r in passwd if r[0] == name or r[2] == name), None)
    if entry is not None:
        uid, gid = int(entry[2]), int(entry[3])
        home = entry[5] if len(entry) > 5 and entry[5] else "/"
    elif (number := numeric_id(name)) is not None:
        uid, gid = number, 0 if not group else None
    elif name.isdigit():
        raise _bad_id(name, "user")
    else:
        raise InvalidArgument(
            f"unable to find user {name}: no matching entries in passwd file",
            hint="add the user to /etc/passwd in an earlier step or use a numeric uid",
        )
    groups_table = _valid_rows(_read_table(rootfs, "etc/group"), 3, (2,))
    if group:
        found = next((r for r in groups_table if r[0] == group), None)
        if found is not None:
            gid = int(found[2])
        elif (number := numeric_id(group)) is not None:
            gid = number
        elif group.isdigit():
            raise _bad_id(group, "group")
        else:
            raise InvalidArgument(
                f"unable to find group {group}: no matching entries in group file"
            )
    if gid is None:
        gid = 0
    # The primary group is always among the process's groups (containerd's
    # WithAdditionalGIDs, which BuildKit uses): `id` shows groups=0(root),10(wheel).
    extra: list[int] = [gid]
    if not group and entry is not None:
        # Supplementary groups listing the user by name, as login would set them.
        for row in groups_table:
            if len(row) >= 4 and entry[0] in row[3].split(","):
                g = int(row[2])
                if g not in extra:
                    extra.append(g)
    return Identity(uid=uid, gid=gid, groups=tuple(extra), home=home)


def chown_ids(rootfs: str, text: str) -> tuple[int, int] | None:
    """COPY --chown: numbers as given, names through the rootfs's /etc/passwd and /etc/group;
    without a group the gid is the uid, as Docker documents it."""
    if not text:
        return None
    user, _, group = text.partition(":")

    def lookup(table: str, name: str) -> int:
        number = numeric_id(name)
        if number is not None:
            return number
        what = "user" if table == "passwd" else "group"
        if name.isdigit():
            raise _bad_id(name, what)
        for fields in _valid_rows(_read_table(rootfs, f"etc/{table}"), 3, (2,)):
            if fields[0] == name:
                return int(fields[2])
        raise InvalidArgument(
            f"unable to convert uid/gid chown string to host mapping: no such {what} {name!r}"
        )

    uid = lookup("passwd", user)
    gid = lookup("group", group) if group else uid
    return uid, gid
