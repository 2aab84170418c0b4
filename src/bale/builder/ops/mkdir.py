"""WORKDIR's directory inside a rootfs (links resolved there), made as BuildKit makes it:
0755, with its missing parents owned by the stage's USER."""

from __future__ import annotations

import os

from bale.builder.users import resolve_user, set_owner
from bale.errors import InvalidArgument
from bale.frontends.graph import MkdirOp
from bale.store.layers.rootpath import resolve


def run_mkdir(rootfs: str, op: MkdirOp) -> None:
    owner = resolve_user(rootfs, op.user) if op.user else None
    current = ""
    for part in (p for p in op.path.split("/") if p):
        current = f"{current}/{part}"
        target = resolve(rootfs, current, follow_final=True)
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
            if owner is not None:
                set_owner(target, owner.uid, owner.gid)
        elif not os.path.isdir(target):
            raise InvalidArgument(f"WORKDIR {op.path}: {current} exists and is not a directory")
