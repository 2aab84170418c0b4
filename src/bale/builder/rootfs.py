"""States as filesystems: a chain of layers unpacked into committed snapshots (once per chain
id, reused by later steps and builds), and read-only views of them mounted for a step."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bale.builder.bases import LayerFetcher
from bale.builder.state import FsState, LayerRef
from bale.mounts import mounted
from bale.store.local import Store
from bale.store.snapshots import Snapshotter

if TYPE_CHECKING:
    from bale.store.layers.unpack import Blob, Opener


class Rootfs:
    def __init__(
        self,
        store: Store,
        snapshots: Snapshotter,
        fetcher: LayerFetcher | None = None,
        lease: str = "",
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self._fetcher = fetcher
        # The snapshot lease of the build: what it unpacks or finds stays until it ends.
        self.lease = lease

    def snapshot(self, state: FsState) -> str:
        """The committed snapshot holding the state's filesystem ("" for the empty one)."""
        # Layer application loads only when a state is needed: a cached build never needs it.
        from bale.store.layers import unpack

        if self._fetcher is not None:
            self._fetcher.fetch_missing(state.layers)
        sources = [unpack.LayerSource(layer.diff_id, self._opener(layer)) for layer in state.layers]
        return unpack.unpack_chain(self.snapshots, sources, lease=self.lease)

    def _opener(self, layer: LayerRef) -> Opener:
        store, desc = self.store, layer.descriptor

        def open_blob() -> Blob:
            return store.content.open(desc.digest, desc.size)

        return open_blob

    @contextmanager
    def view(self, state: FsState) -> Iterator[str]:
        """The state's filesystem mounted for reading; gone when the block ends."""
        root = self.snapshot(state)
        with (
            self.snapshots.prepared(f"view-{uuid.uuid4().hex}", root) as view,
            mounted(view.mounts, self.snapshots.root / "mnt") as path,
        ):
            yield path
