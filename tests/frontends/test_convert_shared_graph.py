"""Several builds converted into one graph (bake): what they share merges, steps that read a
build's own context stay apart, and a linked build's result stands for a named context."""

from __future__ import annotations

from bale.builder.cachekey import step_key
from bale.builder.state import FsState
from bale.frontends.dockerfile import resolve
from bale.frontends.dockerfile.convert import ConvertOptions, convert
from bale.frontends.graph import CopyOp, ExecOp, Graph, ImageOp, ResolvedImage
from bale.oci.config import ImageConfig
from bale.oci.digest import Digest
from bale.oci.platform import Platform

AMD64 = Platform.parse("linux/amd64")

DOCKERFILE = "FROM base:1\nRUN make base\nCOPY . /src\n"


class Images:
    def image(self, ref: str, platform: Platform) -> ResolvedImage:
        return ResolvedImage(ref, Digest.of(f"{ref} {platform}".encode()), ImageConfig(platform))


def _add(graph: Graph, text: str, options: ConvertOptions) -> str:
    resolved = resolve(text, target_platform=AMD64, build_platform=AMD64)
    (only,) = convert([resolved], Images(), options, graph).targets
    return only.vertex


def _ops(graph: Graph, kind: type) -> list[str]:
    return [d for d, v in graph.vertices.items() if isinstance(v.op, kind)]


def test_steps_reading_a_context_stay_apart_and_keep_one_cache_key() -> None:
    graph = Graph()
    one = _add(graph, DOCKERFILE, ConvertOptions(scope="ctx-one"))
    two = _add(graph, DOCKERFILE, ConvertOptions(scope="ctx-two"))
    same = _add(graph, DOCKERFILE, ConvertOptions(scope="ctx-one"))
    assert one != two and one == same
    # The base and the RUN that reads nothing local are shared; each context has its COPY.
    assert len(_ops(graph, ImageOp)) == 1 and len(_ops(graph, ExecOp)) == 1
    assert len(_ops(graph, CopyOp)) == 2
    # The scope is identity only: both COPY steps have the same cache key.
    state = FsState(key="parent")
    keys = {step_key(graph.vertices[d], [state], "files") for d in _ops(graph, CopyOp)}
    assert len(keys) == 1


def test_a_single_build_keeps_its_plain_digests() -> None:
    alone = _add(Graph(), DOCKERFILE, ConvertOptions())
    shared = Graph()
    assert _add(shared, DOCKERFILE, ConvertOptions()) == alone


def test_a_linked_build_stands_for_a_named_context() -> None:
    graph = Graph()
    resolved = resolve(DOCKERFILE, target_platform=AMD64, build_platform=AMD64)
    (base,) = convert([resolved], Images(), ConvertOptions(), graph).targets
    top = resolve(
        "FROM app\nRUN make top\nCOPY --from=app /src /copy\n",
        target_platform=AMD64,
        build_platform=AMD64,
    )
    (out,) = convert(
        [top], Images(), ConvertOptions(linked={("app", str(AMD64)): base}), graph
    ).targets
    run = graph.vertices[graph.vertices[out.vertex].inputs[0]]
    assert isinstance(run.op, ExecOp) and run.inputs == (base.vertex,)
    assert graph.vertices[out.vertex].inputs == (run.digest, base.vertex)
    # No image named "app" was asked for: the only base is base:1.
    refs = [op.ref for op in (graph.vertices[d].op for d in _ops(graph, ImageOp))
            if isinstance(op, ImageOp)]  # fmt: skip
    assert refs == ["base:1"]
