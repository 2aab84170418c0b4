"""What overlayfs writes into an upper directory that bale reads back."""

from __future__ import annotations

import os

# An upper directory marked opaque hides everything lower layers have in it.
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def is_opaque(path: str | os.PathLike[str]) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False
