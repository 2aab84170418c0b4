"""Chain ids: the identity of a stack of layers (what a snapshot of them is named by)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bale.oci import Digest


def chain_ids(diff_ids: Sequence[Digest]) -> list[Digest]:
    """OCI chain ids: the first diff id, then sha256("<previous chain id> <diff id>")."""
    out: list[Digest] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            text = f"{out[-1]} {diff_id}".encode()
            out.append(Digest("sha256", hashlib.sha256(text).hexdigest()))
    return out
