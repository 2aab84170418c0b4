"""Filesystem states of a build: chains of layers with the cache key that made them."""

from __future__ import annotations

from dataclasses import dataclass

from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.store.layers.chain import chain_ids


@dataclass(frozen=True)
class LayerRef:
    descriptor: Descriptor
    diff_id: Digest


@dataclass(frozen=True)
class FsState:
    layers: tuple[LayerRef, ...] = ()
    # Identifies how the state was made and what it holds: its dependents' keys build on it.
    key: str = ""
    # When the step that made this state ran (a cache hit keeps the first run's time), so an
    # unchanged rebuild gives the same image config and digest.
    created: float | None = None

    def chain_id(self) -> str:
        ids = chain_ids([layer.diff_id for layer in self.layers])
        return str(ids[-1]) if ids else ""
