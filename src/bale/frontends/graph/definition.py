"""What a frontend hands the builder: the graph and, per target platform, the vertex whose
filesystem is the image and the image config to go with it (BuildKit: the LLB definition
plus the `containerimage.config` metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bale.frontends.graph.graph import Graph
from bale.oci.config import ImageConfig
from bale.oci.digest import Digest
from bale.oci.platform import Platform


@dataclass(frozen=True)
class ResolvedImage:
    """A base image as a frontend needs it: its identity for one platform and its config."""

    ref: str
    manifest: Digest
    config: ImageConfig
    resolved: str = ""  # the index or manifest digest the reference resolved to


class ImageResolver(Protocol):
    """The frontend's one outward need (BuildKit's meta resolver); failures are BaleErrors
    that the frontend reports at the line that named the image."""

    def image(self, ref: str, platform: Platform) -> ResolvedImage: ...


@dataclass(frozen=True)
class Material:
    """An image the build read: its reference, the digest it resolved to, and the platform
    it was resolved for (a BUILDPLATFORM stage's base is the build platform's)."""

    ref: str
    digest: str
    platform: Platform


@dataclass(frozen=True)
class PlatformTarget:
    platform: Platform
    vertex: str  # the final filesystem
    # Runtime config and history as the Dockerfile made them: no times, no diff ids yet.
    config: ImageConfig
    # For each history entry, the vertex whose state it stands for ("" keeps the base's).
    history_vertices: tuple[str, ...]
    materials: tuple[Material, ...] = ()
    # What an SBOM scans beside the image (BUILDKIT_SBOM_SCAN_STAGE / _CONTEXT): other
    # built stages as (name, vertex), and whether the build context is scanned too.
    scan_stages: tuple[tuple[str, str], ...] = ()
    scan_context: bool = False


@dataclass(frozen=True)
class BuildDefinition:
    graph: Graph
    targets: tuple[PlatformTarget, ...]
