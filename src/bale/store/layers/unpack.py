"""Image layers unpacked into committed snapshots, once per chain id, reused afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bale.errors import AlreadyExists
from bale.mounts import mounted
from bale.oci import Digest
from bale.store.layers.apply import apply_layer
from bale.store.layers.chain import chain_ids
from bale.store.snapshots import Snapshotter


class Blob(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[], Blob]


@dataclass(frozen=True)
class LayerSource:
    """An image layer: its diff id and how to open its (compressed or plain) blob."""

    diff_id: Digest
    open: Opener


def unpack_chain(
    snapshotter: Snapshotter, layers: Sequence[LayerSource], *, lease: str = ""
) -> str:
    """The committed snapshot holding all `layers` applied in order ("" when there are none).

    Snapshots are named by chain id, so a chain already unpacked (by this or an earlier
    build) is found and its layers are not opened at all. With a snapshot `lease`, what is
    found or made stays until the lease ends, whatever a concurrent prune does.
    """
    parent = ""
    for layer, chain_id in zip(layers, chain_ids([la.diff_id for la in layers]), strict=True):
        name = str(chain_id)
        if snapshotter.lookup(name, lease=lease) is None:
            _unpack_one(snapshotter, layer, name, parent, lease)
        parent = name
    return parent


def _unpack_one(
    snapshotter: Snapshotter, layer: LayerSource, name: str, parent: str, lease: str
) -> None:
    key = f"extract-{uuid.uuid4().hex}"
    with snapshotter.prepared(key, parent, labels={"bale.diff-id": str(layer.diff_id)}) as active:
        with mounted(active.mounts, snapshotter.root / "mnt") as target:
            stream = layer.open()
            try:
                apply_layer(stream, target, expect_diff_id=layer.diff_id)
            finally:
                stream.close()
        try:
            snapshotter.commit(name, key, lease=lease)
        except AlreadyExists:
            # Unpacked concurrently by another build; ours is dropped on exit.
            snapshotter.lookup(name, lease=lease)
