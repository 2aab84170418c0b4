"""The build graph: vertices whose digest hashes their op's definition and their inputs'
digests (a Merkle DAG, as LLB's).

Identical work has one identity whichever platform asked for it, so a stage built with
`FROM --platform=$BUILDPLATFORM` for four target platforms is one chain of vertices, run once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from bale.errors import SourceRange
from bale.frontends.graph.ops import Op
from bale.oci import canonical


@dataclass(frozen=True)
class Location:
    """Where a vertex comes from: a source range and the whole source text (for errors)."""

    source: SourceRange
    lines: tuple[str, ...] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Vertex:
    op: Op
    inputs: tuple[str, ...]
    digest: str
    # What users read: "[linux/arm64 build 2/4] RUN make" (not part of the identity).
    name: str = field(default="", compare=False)
    platform: str = field(default="", compare=False)  # the platform the step is for
    location: Location | None = field(default=None, compare=False)
    # --no-cache / --no-cache-filter: run even when a record exists (the result is recorded).
    ignore_cache: bool = field(default=False, compare=False)
    # Which step of the build this is, stable from one build to the next whatever changed
    # ("linux/amd64|build|3"): what a cache miss is explained against.
    step: str = field(default="", compare=False)
    # Which local inputs (contexts, secrets, ssh) the op reads, when one graph holds builds
    # of several: part of the identity, so COPY . from two contexts never merges, and never
    # part of the cache key, which stays portable.
    scope: str = ""

    @staticmethod
    def make(
        op: Op,
        inputs: tuple[str, ...] = (),
        *,
        name: str = "",
        platform: str = "",
        location: Location | None = None,
        ignore_cache: bool = False,
        step: str = "",
        scope: str = "",
    ) -> Vertex:
        doc = {"kind": op.kind, "def": op.definition(), "inputs": list(inputs)}
        if scope:
            doc["scope"] = scope
        digest = "sha256:" + hashlib.sha256(canonical.dumps(doc)).hexdigest()
        return Vertex(op, inputs, digest, name, platform, location, ignore_cache, step, scope)


class Graph:
    def __init__(self) -> None:
        self.vertices: dict[str, Vertex] = {}

    def add(self, vertex: Vertex) -> str:
        """Add (or find) a vertex; the first one added keeps its display name. A vertex that
        must ignore the cache makes the shared one ignore it too."""
        found = self.vertices.get(vertex.digest)
        if found is None:
            self.vertices[vertex.digest] = vertex
        elif vertex.ignore_cache and not found.ignore_cache:
            self.vertices[vertex.digest] = replace(found, ignore_cache=True)
        return vertex.digest

    def deps(self) -> dict[str, tuple[str, ...]]:
        return {d: v.inputs for d, v in self.vertices.items()}
