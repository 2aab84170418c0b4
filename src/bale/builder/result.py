"""What a build yields (BuildKit's Result): per platform, the image's layers and the config
the frontend made, with what the exporters need to finish it."""

from __future__ import annotations

from dataclasses import dataclass

from bale.builder.state import LayerRef
from bale.frontends.graph import Material
from bale.oci.config import ImageConfig
from bale.oci.platform import Platform


@dataclass(frozen=True)
class HistoryState:
    """The state a history entry stands for: when it was made and how many layers it had."""

    created: float | None
    layers: int


@dataclass(frozen=True)
class StepRecord:
    """One solved step: its cache key, the layer it added (None: no change) and when it
    first ran; `parent` is the vertex whose state it built on (what cache export follows)."""

    vertex: str
    key: str
    layer: LayerRef | None
    created: float
    parent: str
    executed: bool


@dataclass(frozen=True)
class PlatformResult:
    platform: Platform
    # Runtime config and history as the frontend made them (no times, no diff ids yet).
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    # One per history entry; None keeps the base image's entry as it is.
    history: tuple[HistoryState | None, ...]
    materials: tuple[Material, ...] = ()
    vertex: str = ""  # the vertex whose state is the image's filesystem


@dataclass(frozen=True)
class BuildResult:
    platforms: tuple[PlatformResult, ...]
    source_date_epoch: int | None = None
    # Every step solved (hit or executed), for cache export.
    steps: tuple[StepRecord, ...] = ()

    def chain(self, vertex: str) -> list[StepRecord]:
        """The steps whose layers make `vertex`'s state, last first (cache mode=min)."""
        by_vertex = {s.vertex: s for s in self.steps}
        out = []
        while vertex in by_vertex:
            record = by_vertex[vertex]
            out.append(record)
            vertex = record.parent
        return out
