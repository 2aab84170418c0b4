"""`bale build --builder NAME` with remote nodes: one build fanned out per platform.

1. The context is packed once (what `.dockerignore` keeps); every node is asked, in
   parallel, for its bale version, its platforms and whether it holds that context.
2. The platforms are planned over the nodes (schedule.plan): native first, else emulated
   with a warning, or refused before any work with `--strict-platforms`.
3. Each node builds its platforms into its own store (`bale node build`), its progress
   relayed live into the one display with `[node]` in front of each step.
4. When every node succeeded, their OCI layouts are verified into the local store, one
   index is made of all platform manifests and attestation manifests, and the outputs
   (push, load, oci, docker, local, tar) run once. A failed node cancels the others and
   nothing is tagged or pushed anywhere.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from bale.builder.history import Recorder, masker, secret_values
from bale.builder.progress import Event, ProgressSink
from bale.builder.state import LayerRef
from bale.cli.build_run import output_specs, parse_secret
from bale.cli.common import open_registries, open_store
from bale.cli.nodes import schedule, transport
from bale.cli.nodes.context_tar import pack
from bale.cli.nodes.sessions import (
    _agent,
    _cancel,
    _dispatch,
    _greet,
    _local_contexts,
    _node_argv,
    _open,
    _release,
    _Run,
    _run_all,
    format_of,
    local_root,
    plan_without,
)
from bale.cli.nodes.state import Builder, Node
from bale.cli.progress_render import TtyRenderer, renderer
from bale.errors import BaleError, InvalidArgument
from bale.exporters.export_options import ImageFormat
from bale.exporters.image import ImageOutcome, PlatformImage
from bale.exporters.outputs import OutputSpec, exporter_for
from bale.frontends.dockerfile.parser import ParsedDockerfile
from bale.oci import mediatype
from bale.oci.annotations import INDEX
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index
from bale.oci.platform import Platform
from bale.store.archive_load import ingest_documents, ingest_layout
from bale.store.images import StoreMode
from bale.store.local import Lease, Store

if TYPE_CHECKING:
    from bale.cli.build_cmd import BuildRequest

CANCEL_GRACE = 10.0  # seconds a node gets to stop after its stdin closes
_CHUNK = 1 << 20


def _platform_images(store: Store, manifests: Sequence[Descriptor]) -> tuple[PlatformImage, ...]:
    out = []
    for desc in manifests:
        manifest = store.manifest(desc)
        config = store.config(manifest.config)
        layers = tuple(
            LayerRef(layer, diff)
            for layer, diff in zip(manifest.layers, config.diff_ids, strict=True)
        )
        out.append(PlatformImage(config.platform, config, layers))
    return tuple(out)


def assemble_nodes(
    store: Store,
    lease: Lease,
    results: Sequence[IO[bytes]],
    order: Sequence[Platform],
    ingest: Callable[[Store, BinaryIO, Lease], list[Descriptor]] = ingest_layout,
    image_format: ImageFormat | None = None,
) -> ImageOutcome:
    """One index of every node's platform manifests (in the requested platform order) and
    attestation manifests; the nodes' layouts verified into the store under `lease`."""
    images: list[Descriptor] = []
    attestations: list[Descriptor] = []
    for result in results:
        result.seek(0)
        for top in ingest(store, result, lease):  # type: ignore[arg-type]
            if mediatype.is_index(top.media_type):
                index = store.index(top)
                images += index.image_manifests()
                attestations += index.attestations()
            else:
                config = store.config(store.manifest(top).config)
                images.append(
                    Descriptor(top.media_type, top.digest, top.size, platform=config.platform)
                )

    def rank(desc: Descriptor) -> int:
        return order.index(desc.platform) if desc.platform in order else len(order)

    images.sort(key=rank)
    platforms = _platform_images(store, images)
    configs = tuple(str(store.manifest(d).config.digest) for d in images)
    if len(images) == 1 and store.mode() is StoreMode.CLASSIC:
        only = images[0]
        target = Descriptor(only.media_type, only.digest, only.size)
    else:
        fmt = image_format or ImageFormat()
        media_type = mediatype.OCI_INDEX if fmt.oci_media_types else mediatype.DOCKER_MANIFEST_LIST
        notes = tuple(sorted((a.key, a.value) for a in fmt.annotations if a.type == INDEX))
        index = Index(manifests=(*images, *attestations), media_type=media_type, annotations=notes)
        target = store.put_document(index.encode(), media_type, lease)
    return ImageOutcome(target, tuple(images), configs, platforms)


def _tag(
    args: argparse.Namespace,
    store: Store,
    image: ImageOutcome,
    specs: Sequence[OutputSpec],
    tags: list[str],
) -> None:
    """Push the one index (its children are in the registry already, by digest) under
    every name: the only tag a build on nodes moves."""
    from bale.exporters.outputs import image_names
    from bale.oci.reference import Reference
    from bale.registry.client import Repository

    data = store.read_json_blob(image.target)
    with open_registries(args) as registries:
        for spec in specs:
            by_digest = spec.flag("push-by-digest")
            for name in image_names(spec, tags):
                ref = Reference.parse(name)
                repo = Repository(registries.session(ref.domain), ref.path, push=True)
                tag = ref.tag if ref.tag and not by_digest else str(image.target.digest)
                repo.put_manifest(tag, data, image.target.media_type)


@dataclass
class Job:
    """One build's remote part and what exporting its result takes: made by `prepare`
    (every check that needs no node), run by `build_remote`, ended by `export` and
    `close`. A caller may run several jobs' remote parts before exporting any."""

    args: argparse.Namespace
    request: BuildRequest
    specs: list[OutputSpec]
    exporters: list[Any]
    names: list[str]
    artifact: bool
    format_attrs: dict[str, str]
    image_format: ImageFormat
    push_only: bool
    secrets: dict[str, str]
    agent: str
    local_contexts: dict[str, Path]
    label: str = ""  # the bake target, shown beside the node in the progress
    packed: IO[bytes] | None = None
    named_packs: dict[str, tuple[str, IO[bytes], int]] = field(default_factory=dict)
    runs: list[_Run] = field(default_factory=list)
    busy: list[_Run] = field(default_factory=list)


def prepare(
    args: argparse.Namespace,
    request: BuildRequest,
    files: dict[Platform, ParsedDockerfile],
    label: str = "",
    specs: list[OutputSpec] | None = None,
) -> Job:
    """Everything about one build that can be refused before any node is contacted
    (`specs`: its outputs, when not the request's own)."""
    from bale.cli.attest_flags import oci_artifact
    from bale.exporters.outputs import image_names

    local_contexts = _local_contexts(request)
    agent = _agent(request)
    specs = output_specs(request) if specs is None else specs
    if len(files) > 1 and any(s.type == "docker" and s.dest for s in specs):
        raise InvalidArgument(
            "docker exporter does not currently support exporting manifest lists",
            hint="build one platform, or use -o type=oci",
        )
    exporters = [
        exporter
        for spec in specs
        for exporter in exporter_for(
            spec,
            list(request.tags),
            stdout=sys.stdout.buffer,
            registries=lambda: open_registries(args),
        )
    ]
    names: list[str] = []
    for spec in specs:
        names += [n for n in image_names(spec, list(request.tags)) if n not in names]
    format_attrs, image_format = format_of(specs)
    secrets = {
        k: base64.b64encode(v).decode() for k, v in (parse_secret(s) for s in request.secrets)
    }
    return Job(
        args,
        request,
        specs,
        exporters,
        names,
        oci_artifact(specs),
        format_attrs,
        image_format,
        # Only registry outputs: each node pushes its part by digest, layers never come here.
        bool(specs) and all(spec.type == "registry" for spec in specs),
        secrets,
        agent,
        local_contexts,
        label,
    )


def probe(nodes: Sequence[Node]) -> tuple[dict[str, transport.Hello], dict[str, BaleError]]:
    """Every node's hello, asked in parallel, before any build is planned over them."""
    hellos: dict[str, transport.Hello] = {}
    down: dict[str, BaleError] = {}

    def ask(node: Node) -> None:
        try:
            info = transport.hello(node)
        except BaleError as exc:
            down[node.name] = exc
            return
        hellos[node.name] = info

    threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for node in nodes:
        if node.name in hellos:
            transport.require_version(node, hellos[node.name])
    return hellos, down


def build_remote(
    job: Job,
    nodes: Sequence[Node],
    sink: ProgressSink,
    *,
    strict: bool = False,
    plan: schedule.Plan | None = None,
    known: dict[str, transport.Hello] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Pack the contexts, run the build on the nodes and wait for every node's result
    (kept in `job.busy`). Given a `plan`, only its nodes are contacted; otherwise every
    node is greeted and the platforms planned over those that answered. `stop`, set by
    the caller, cancels the nodes' builds."""
    args, request = job.args, job.request
    digest, job.packed = pack(request.context, request.dockerfile.path)
    packed = job.packed
    size = os.fstat(packed.fileno()).st_size
    for name, path in job.local_contexts.items():
        d, f = pack(path, None)
        job.named_packs[name] = (d, f, os.fstat(f.fileno()).st_size)
    named_packs = job.named_packs
    named_digests = {name: d for name, (d, _, _) in named_packs.items()}
    runs = job.runs
    if plan is None:
        # One session per node, opened at once: whatever fails below cancels them all.
        runs += [_open(node, digest, sink, job.agent, named_digests, job.label) for node in nodes]
        hellos, down = _greet(runs)
        plan = plan_without(request.platforms, nodes, hellos, down, strict=strict)
    else:
        used = {a.node for a in plan.assignments}
        runs += [
            _open(node, digest, sink, job.agent, named_digests, job.label)
            for node in nodes
            if node.name in used
        ]
        hellos, down = _greet(runs)
        if down:
            raise next(iter(down.values()))
        hellos = {**(known or {}), **hellos}
    for warning in plan.warnings:
        sink.emit(Event("warning", "", "", message=warning))
    by_run = {r.node.name: r for r in runs}
    env = {k: os.environ[k] for k in ("SOURCE_DATE_EPOCH",) if k in os.environ}
    where = f" ({job.label})" if job.label else ""

    def dispatch(run_: _Run, platforms: tuple[Platform, ...], hello: transport.Hello) -> None:
        node = run_.node
        has_context = hello.has_context
        packs: list[tuple[IO[bytes], int]] = [] if has_context else [(packed, size)]
        named = []
        for name, (d, f, n) in named_packs.items():
            sent = name not in hello.has_named
            named.append({"name": name, "digest": d, "size": n if sent else 0})
            if sent:
                packs.append((f, n))
        header = {
            "node": node.name,
            "argv": _node_argv(
                args,
                request,
                platforms,
                job.artifact,
                job.names,
                job.push_only,
                job.format_attrs,
                agent=bool(job.agent),
            ),
            "push": job.push_only,
            "context": digest,
            "context_size": 0 if has_context else size,
            "dockerfile": request.dockerfile.text,
            "dockerfile_name": request.dockerfile.path.name
            if request.dockerfile.path
            else "Dockerfile",
            "secrets": job.secrets,
            "env": env,
            "named": named,
        }
        note = "" if not has_context else " (context cached on the node)"
        message = f"[{node.name}] building {', '.join(str(p) for p in platforms)}{where}{note}"
        sink.emit(Event("warning", "", "", message=message))
        run_.platforms = platforms
        if len(platforms) == 1 and len(request.platforms) > 1:
            run_.shown = str(platforms[0])
        _dispatch(run_, header, packs)

    def retry(lost: _Run) -> _Run | None:
        """A new session, on the least busy other node serving every lost platform."""
        able = [
            n
            for n in nodes
            if n.name != lost.node.name
            and n.name in hellos
            and all(p in (n.platforms or hellos[n.name].native) for p in lost.platforms)
        ]
        if not able:
            return None
        busy_on = {n.name: sum(1 for r in runs if r.node.name == n.name) for n in able}
        node = min(able, key=lambda n: busy_on[n.name])
        sink.emit(
            Event(
                "warning",
                "",
                "",
                message=(
                    f"WARNING: {transport.describe(lost.node)} was lost while building "
                    f"{', '.join(str(p) for p in lost.platforms)}{where}: "
                    f"retrying on node {node.name!r}"
                ),
            )
        )
        again = _open(node, digest, sink, job.agent, named_digests, job.label)
        runs.append(again)
        try:
            fresh, _ = _greet([again])
        except BaleError:
            return None
        if node.name not in fresh:
            return None
        dispatch(again, lost.platforms, fresh[node.name])
        return again

    for a in plan.assignments:
        dispatch(by_run[a.node], a.platforms, hellos[a.node])
    for idle in list(runs):
        if not idle.platforms:
            _release(idle)
    job.busy = _run_all([r for r in runs if r.platforms], retry, stop)


def assemble(job: Job, store: Store, lease: Lease) -> ImageOutcome:
    """The nodes' results in the store under `lease`, as one image; nothing named yet."""
    results = [r.result for r in job.busy]
    order = job.request.platforms
    if job.push_only:
        return assemble_nodes(store, lease, results, order, ingest_documents, job.image_format)
    return assemble_nodes(store, lease, results, order, image_format=job.image_format)


def publish(job: Job, store: Store, image: ImageOutcome, *, tags: bool | None = None) -> list[Any]:
    """Run the job's outputs on its assembled image: all of them (`tags` None), only those
    that leave the store's names alone (False: pushes, files), or only the store tags
    (True). Returns the responses to finalize."""
    from bale.exporters.store_image import StoreImageExporter

    if job.push_only:
        if tags is not True:
            _tag(job.args, store, image, job.specs, list(job.request.tags))
        return []
    return [
        exporter.export(store, image)
        for exporter in job.exporters
        if tags is None or isinstance(exporter, StoreImageExporter) == tags
    ]


def close(job: Job) -> None:
    """Close the job's files and end whatever node session still runs."""
    if job.packed is not None:
        job.packed.close()
    for _, f, _ in job.named_packs.values():
        f.close()
    for r in job.runs:
        r.result.close()
        if r.proc.poll() is None:
            _cancel([r])


def recorder_for(store: Store, sink: ProgressSink, lease: Lease, request: BuildRequest) -> Recorder:
    """The build record kept here of a build on nodes: the steps as the nodes relayed them
    (named `[node] ...`), their logs and errors, secrets masked."""
    values = dict(parse_secret(s) for s in request.secrets)
    return Recorder(store, sink, lease, mask=masker(secret_values(values, request.build_args)))


def record(
    recorder: Recorder,
    job: Job,
    image: ImageOutcome | None,
    error: BaseException | None = None,
    command: str = "build",
) -> None:
    """Write the record; one that cannot be written never hides the build's own outcome."""
    from bale.cli.build_run import image_summary, record_request

    request = replace(record_request(job.request, job.specs), command=command)
    if command == "bake":
        request = replace(request, target=job.label)
    try:
        recorder.finish(
            request,
            error=error,
            image=image_summary(image) if image is not None else None,
        )
    except BaleError:
        recorder.abort()
        if error is None:
            raise


def run(
    args: argparse.Namespace,
    request: BuildRequest,
    files: dict[Platform, ParsedDockerfile],
    builder: Builder,
) -> int:
    from bale.cli.build_run import _write_files

    job = prepare(args, request, files)
    strict = bool(getattr(args, "strict_platforms", False))
    if strict and all(n.platforms for n in builder.nodes):
        # Every node declares its platforms: refused without contacting any.
        declared = [schedule.Capability(n.name, n.platforms) for n in builder.nodes]
        schedule.plan(request.platforms, declared, strict=True)
    sink = renderer("quiet" if request.quiet else request.progress)
    try:
        nodes = [local_root(node, args) for node in builder.nodes]
        # The store is opened (and reclaimed) before any node starts: a `local` node may
        # build in this same root.
        with open_store(args) as store, store.lease(rollback=False) as record_lease:
            recorder = recorder_for(store, sink, record_lease, request)
            try:
                build_remote(job, nodes, recorder, strict=strict)
                with store.lease() as lease:
                    image = assemble(job, store, lease)
                    for response in publish(job, store, image):
                        if response.finalize is not None:
                            response.finalize()
            except BaseException as exc:
                record(recorder, job, None, exc)
                raise
            record(recorder, job, image)
    finally:
        close(job)
        if isinstance(sink, TtyRenderer):
            sink.close()
    _write_files(request, image)
    if request.quiet:
        print(image.image_id)
    return 0
