"""What a build yields (BuildKit's Result): per platform, the image's layers and the config
the frontend made, with what the exporters need to finish it and to attest how it was made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bale.builder.state import LayerRef
from bale.frontends.graph import Material
from bale.oci.config import ImageConfig
from bale.oci.digest import Digest
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
class Download:
    """An `ADD <url>` the platform's image used, with the digest of the bytes that came."""

    url: str
    digest: Digest


@dataclass(frozen=True)
class MountUse:
    """A secret or SSH socket a step of the platform mounted: its id, never its value."""

    kind: Literal["secret", "ssh"]
    id: str
    required: bool = False


@dataclass(frozen=True)
class Step:
    """One vertex the platform's image depends on: its op's canonical definition (JSON text)
    and its inputs' digests, in dependency order (what `mode=max` provenance records)."""

    digest: str
    kind: str
    definition: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanTarget:
    """A built stage an SBOM scans beside the image (BUILDKIT_SBOM_SCAN_STAGE)."""

    name: str
    layers: tuple[LayerRef, ...]


@dataclass(frozen=True)
class PlatformUsage:
    """What the platform's image was made from beyond its base images."""

    downloads: tuple[Download, ...] = ()
    mounts: tuple[MountUse, ...] = ()
    steps: tuple[Step, ...] = ()
    network: bool = False  # some RUN had network access


@dataclass(frozen=True)
class PlatformResult:
    platform: Platform
    # Runtime config and history as the frontend made them (no times, no diff ids yet).
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    # One per history entry; None keeps the base image's entry as it is.
    history: tuple[HistoryState | None, ...]
    # Base images (FROM, COPY --from, RUN --mount from=), each for the platform it was
    # resolved for: a `FROM --platform=$BUILDPLATFORM` base is the build platform's.
    materials: tuple[Material, ...] = ()
    usage: PlatformUsage = PlatformUsage()
    scan_stages: tuple[ScanTarget, ...] = ()
    scan_context: bool = False
    vertex: str = ""  # the vertex whose state is the image's filesystem


@dataclass(frozen=True)
class ContextInput:
    """A `--build-context NAME=SOURCE` as given; `image_ref` is the store reference an image
    context stands for ("" for a directory)."""

    name: str
    source: str
    image_ref: str = ""


@dataclass(frozen=True)
class BuildResult:
    platforms: tuple[PlatformResult, ...]
    source_date_epoch: int | None = None
    started: float | None = None  # wall-clock seconds
    finished: float | None = None
    contexts: tuple[ContextInput, ...] = ()
    compression: str = "gzip"  # of the layers the build wrote
    compression_level: int | None = None  # None: the writer's default for `compression`
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
