"""Cache keys: what decides a step's result, and nothing else (docs/build.md, "Cache keys").

A step's key hashes its op's definition (argv, env, paths, flags…), the keys of the states it
reads, and its content: the checksums of the context files a COPY or a RUN bind mount reads
(names, types, modes, link targets, contents — never mtimes, inodes or absolute paths;
owners only for a COPY --from that keeps them), and the digests of ADD URLs. A COPY --from
another stage reads that stage's files, not its key, so a stage rebuilt into the same files
keeps what copies from it cached; so does a RUN bind mount of another stage's files.

A state's key is its step's key and the layer the step produced: when a record is replaced
(a `--no-cache` run that made other bytes), what was built on the old layer misses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from bale.builder.state import FsState, LayerRef
from bale.frontends.graph import CopyOp, Vertex
from bale.oci import canonical


def _digest(body: object) -> str:
    return "sha256:" + hashlib.sha256(canonical.dumps(body)).hexdigest()


def step_key(
    v: Vertex, inputs: Sequence[FsState], content: str, by_content: Collection[int] = ()
) -> str:
    """`by_content`: inputs that count through the files read from them (in `content`)."""
    keys = [state.key for state in inputs]
    if isinstance(v.op, CopyOp) and v.op.from_input:
        keys = keys[:1]  # the source stage counts through the files copied (in `content`)
    keys = [("" if i in by_content else k) for i, k in enumerate(keys)]
    return _digest({"op": v.op.kind, "def": v.op.definition(), "inputs": keys, "content": content})


def state_key(step: str, layer: LayerRef | None) -> str:
    return _digest({"step": step, "layer": str(layer.diff_id) if layer else ""})


def layers_key(layers: Sequence[LayerRef]) -> str:
    """A base image's state: its filesystem, by the diff ids of its layers (a recompressed or
    retagged image with the same content keeps every step built on it cached)."""
    return _digest({"layers": [str(layer.diff_id) for layer in layers]})
