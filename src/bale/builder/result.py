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
class PlatformResult:
    platform: Platform
    # Runtime config and history as the frontend made them (no times, no diff ids yet).
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    # One per history entry; None keeps the base image's entry as it is.
    history: tuple[HistoryState | None, ...]
    materials: tuple[Material, ...] = ()


@dataclass(frozen=True)
class BuildResult:
    platforms: tuple[PlatformResult, ...]
    source_date_epoch: int | None = None
