"""The build graph: vertices whose digest hashes their definition and their inputs' digests.

Identical work has one identity whichever platform asked for it, so a stage built with
`FROM --platform=$BUILDPLATFORM` for four target platforms is one chain of vertices, run once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bale.errors import SourceRange
from bale.oci import canonical


@dataclass(frozen=True)
class Vertex:
    """kind: "image" (a base image's layers), "scratch", "exec" (RUN), "copy" (COPY/ADD)."""

    kind: str
    definition: dict[str, Any] = field(hash=False, compare=False)
    inputs: tuple[str, ...]
    name: str = field(default="", hash=False, compare=False)
    platform: str = field(default="", hash=False, compare=False)
    source: SourceRange | None = field(default=None, hash=False, compare=False)
    payload: Any = field(default=None, hash=False, compare=False)  # runtime-only details
    digest: str = ""

    @staticmethod
    def make(kind: str, definition: dict[str, Any], inputs: tuple[str, ...], **kw: Any) -> Vertex:
        body = canonical.dumps({"kind": kind, "def": definition, "inputs": list(inputs)})
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return Vertex(kind, definition, inputs, digest=digest, **kw)


class Graph:
    def __init__(self) -> None:
        self.vertices: dict[str, Vertex] = {}

    def add(self, vertex: Vertex) -> str:
        """Add (or find) a vertex; the first one added keeps its display name."""
        self.vertices.setdefault(vertex.digest, vertex)
        return vertex.digest

    def deps(self) -> dict[str, tuple[str, ...]]:
        return {d: v.inputs for d, v in self.vertices.items()}
