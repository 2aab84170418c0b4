"""`bale build`'s engine: resolved stages per platform → one graph → solved → images.

Filesystem states are chains of layers. Every step that changes files (RUN, COPY, ADD) runs
on a snapshot of its parent chain (unpacked once per chain id and reused), and what it
changed becomes a layer in the content store. Cache records map a step's cache key to that
layer, so a hit skips the work and reuses the layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bale.builder import progress as pg
from bale.builder.context import BuildContext, clean
from bale.builder.copy import CopyPlan, apply_copy, dest_path, parse_chmod
from bale.builder.graph import Graph, Vertex
from bale.builder.solver import Solver
from bale.emulation.modes import is_native
from bale.errors import (
    BaleError,
    DockerfileError,
    InvalidArgument,
    NotFound,
    SourceRange,
    StepError,
)
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import (
    PROXY_ARGS,
    ImageBase,
    ResolvedBuild,
    ResolvedStage,
    ScratchBase,
    StageBase,
    Step,
)
from bale.frontends.dockerfile.run import run_command
from bale.frontends.dockerignore import DockerIgnore
from bale.mounts import Mount, mounted
from bale.oci.config import HistoryEntry, ImageConfig, RuntimeConfig, parse_time
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.platform import Platform
from bale.store.layers.chain import chain_ids
from bale.store.layers.rootpath import resolve
from bale.store.local import Lease, Store
from bale.store.snapshots import Snapshotter

if TYPE_CHECKING:
    # Imported where used: a fully cached build runs no step and should not pay for them.
    from bale.builder.executor import Executor, RunMount

# Small per-step files live in memory when the machine has /dev/shm.
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
EMPTY_TAR = Digest("sha256", hashlib.sha256(b"\0" * 1024).hexdigest())


@dataclass(frozen=True)
class LayerRef:
    descriptor: Descriptor
    diff_id: Digest


@dataclass(frozen=True)
class FsState:
    layers: tuple[LayerRef, ...] = ()
    key: str = ""  # the cache key of the step that made it
    # When the last step that made this state ran (a cache hit keeps the first run's time),
    # so an unchanged rebuild gives the same image config and digest.
    created: float | None = None

    def chain_id(self) -> str:
        ids = chain_ids([layer.diff_id for layer in self.layers])
        return str(ids[-1]) if ids else ""


@dataclass(frozen=True)
class BaseImage:
    """A base image resolved for one platform: where its layers are and its config."""

    ref: str
    manifest: Descriptor
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    fetch: Callable[[], None] | None = None  # brings missing layers from the registry
    resolved_digest: str = ""  # what the reference resolved to (index or manifest)


@dataclass(frozen=True)
class PlatformResult:
    platform: Platform
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    fs_vertex: str
    base_digests: tuple[tuple[str, str], ...] = ()
    # For each history entry, the state whose time it takes ("" keeps the base's entry).
    history_states: tuple[str, ...] = ()


@dataclass
class BuildRequest:
    context: Path
    resolved: list[ResolvedBuild]  # one per target platform
    bases: dict[tuple[str, str], BaseImage]
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    jobs: int = 2
    network: str = "default"
    secrets: dict[str, bytes] = field(default_factory=dict)
    ssh_socket: str = ""
    source_date_epoch: int | None = None
    excluded: Callable[[str], bool] = lambda _: False
    # Images named by COPY --from that are not stages: (reference, platform) -> image.
    image_lookup: Callable[[str, Platform], BaseImage] | None = None
    # --build-context NAME=DIR: directories COPY --from=NAME reads like the main context.
    named_dirs: dict[str, Path] = field(default_factory=dict)
    compression: str = "gzip"


class Engine:
    def __init__(
        self,
        store: Store,
        snapshotter: Snapshotter,
        executor: Callable[[], Executor],
        sink: pg.ProgressSink,
    ) -> None:
        self.store = store
        self.snapshots = snapshotter
        self._make_executor = executor
        self._executor: Executor | None = None
        self._executor_lock = threading.Lock()
        self.sink = sink
        self._bases: list[BaseImage] = []
        self._fetch_lock = threading.Lock()

    # -- planning ------------------------------------------------------------------------

    def plan(
        self, req: BuildRequest
    ) -> tuple[Graph, list[PlatformResult], dict[str, tuple[str, str]]]:
        """The graph for every platform, each platform's image skeleton, and what each
        vertex's cache key is made of besides its inputs: (definition + checksums, salt)."""
        graph = Graph()
        ctx = BuildContext(req.context, req.excluded, self.store.meta)
        keys: dict[str, tuple[str, str]] = {}
        results = []
        for resolved in req.resolved:
            stage_fs: dict[int, str] = {}
            stage_hist: dict[int, tuple[HistoryEntry, ...]] = {}
            stage_states: dict[int, tuple[str, ...]] = {}
            stage_layers_base: dict[int, tuple[LayerRef, ...]] = {}
            bases: list[tuple[str, str]] = []
            for stage in resolved.stages:
                fs, history, base_layers = self._plan_base(
                    graph,
                    req,
                    resolved,
                    stage,
                    stage_fs,
                    stage_hist,
                    stage_layers_base,
                    keys,
                    bases,
                )
                states = (
                    stage_states[stage.base.index]
                    if isinstance(stage.base, StageBase)
                    else ("",) * len(history)
                )
                # Numbered as BuildKit shows them: FROM and the steps that change files.
                total = _counted_steps(stage)
                stage_label = stage.name or f"stage-{stage.index}"
                n = 1
                for step in stage.steps:
                    n += isinstance(step.instruction, _COUNTED)
                    label = f"[{stage.platform} {stage_label} {n}/{total}]"
                    fs, entry = self._plan_step(
                        graph, req, ctx, resolved, stage, step, fs, stage_fs, label, keys
                    )
                    history += (entry,)
                    states += (fs,)
                stage_fs[stage.index] = fs
                stage_hist[stage.index] = history
                stage_states[stage.index] = states
                stage_layers_base[stage.index] = base_layers
            target = resolved.target
            config = ImageConfig(
                platform=target.platform,
                config=_with_labels(target.config, req.labels),
                history=stage_hist[target.index],
            )
            results.append(
                PlatformResult(
                    target.platform,
                    config,
                    (),
                    stage_fs[target.index],
                    tuple(bases),
                    stage_states[target.index],
                )
            )
        return graph, results, keys

    def _plan_base(
        self,
        graph: Graph,
        req: BuildRequest,
        resolved: ResolvedBuild,
        stage: ResolvedStage,
        stage_fs: dict[int, str],
        stage_hist: dict[int, tuple[HistoryEntry, ...]],
        stage_layers: dict[int, tuple[LayerRef, ...]],
        keys: dict[str, tuple[str, str]],
        bases: list[tuple[str, str]],
    ) -> tuple[str, tuple[HistoryEntry, ...], tuple[LayerRef, ...]]:
        base = stage.base
        if isinstance(base, StageBase):
            return stage_fs[base.index], stage_hist[base.index], stage_layers[base.index]
        if isinstance(base, ScratchBase):
            v = Vertex.make("scratch", {}, (), name="FROM scratch")
            keys[v.digest] = (v.digest, "")
            return graph.add(v), (), ()
        assert isinstance(base, ImageBase)
        if req.image_lookup is not None:
            image = req.image_lookup(base.ref, stage.platform)
        else:
            image = req.bases[(base.ref, str(stage.platform))]
        bases.append((image.ref, image.resolved_digest or str(image.manifest.digest)))
        label = f"{stage.name or f'stage-{stage.index}'} 1/{_counted_steps(stage)}"
        return (
            self._image_vertex(graph, image, stage, keys, label),
            image.config.history,
            image.layers,
        )

    def _image_vertex(
        self,
        graph: Graph,
        image: BaseImage,
        stage: ResolvedStage,
        keys: dict[str, tuple[str, str]],
        label: str,
    ) -> str:
        v = Vertex.make(
            "image",
            {
                "ref": image.ref,
                "manifest": str(image.manifest.digest),
                "platform": str(stage.platform),
            },
            (),
            name=f"[{stage.platform} {label}] FROM {image.ref}",
            platform=str(stage.platform),
            payload=image,
        )
        keys[v.digest] = (v.digest, "")
        return graph.add(v)

    def _plan_step(
        self,
        graph: Graph,
        req: BuildRequest,
        ctx: BuildContext,
        resolved: ResolvedBuild,
        stage: ResolvedStage,
        step: Step,
        fs: str,
        stage_fs: dict[int, str],
        label: str,
        keys: dict[str, tuple[str, str]],
    ) -> tuple[str, HistoryEntry]:
        inst = step.instruction
        created = ""  # filled in by _finish with the time of the state the step made
        text = created_by(step)
        if isinstance(inst, ins.Run):
            command = run_command(step)
            argv = command.argv
            env = [f"{k}={v}" for k, v in step.build_env]
            network = inst.network or req.network
            definition: dict[str, Any] = {
                "argv": list(argv),
                "env": env,
                "cwd": step.workdir or "/",
                "user": step.user,
                "platform": str(stage.platform),
                "network": network,
                "mounts": list(inst.mount_specs),
                "files": [
                    [f.path, f.mode, hashlib.sha256(f.data.encode()).hexdigest()]
                    for f in command.files
                ],
            }
            # What bind mounts read from another stage or an image: (mount index, vertex).
            mount_inputs: list[tuple[int, str]] = []
            for index, (m, stage_index) in enumerate(
                zip(inst.mounts, step.mount_stages, strict=True)
            ):
                if stage_index is not None:
                    mount_inputs.append((index, stage_fs[stage_index]))
                elif m.from_ and m.from_ not in req.named_dirs and req.image_lookup is not None:
                    image = _lookup(req, m.from_, stage, inst, resolved)
                    label_from = f"RUN --mount from={m.from_}"
                    mount_inputs.append(
                        (index, self._image_vertex(graph, image, stage, keys, label_from))
                    )
            run_inputs = (fs, *(digest for _, digest in mount_inputs))
            if not is_native(stage.platform):
                # Steps that run a process show how: "[linux/arm64 emulated build 2/4]".
                label = label.replace(f"[{stage.platform} ", f"[{stage.platform} emulated ", 1)
            v = Vertex.make(
                "exec",
                definition,
                run_inputs,
                name=f"{label} RUN {inst.original[4:].strip()}",
                platform=str(stage.platform),
                source=inst.source,
                payload={
                    "step": step,
                    "resolved": resolved,
                    "stage": stage,
                    "files": command.files,
                    "mount_inputs": mount_inputs,
                },
            )
            mounted_files = self._bind_checksums(inst, req, ctx, resolved)
            keys[v.digest] = (v.digest + mounted_files, self._nocache(req, stage))
            return graph.add(v), HistoryEntry(
                created=created, created_by=text, comment=HISTORY_COMMENT
            )
        if isinstance(inst, ins.Copy):
            urls = [s for s in inst.sources if s.startswith(("http://", "https://"))]
            if urls and not inst.is_add:
                raise DockerfileError(
                    "source can't be a URL for COPY",
                    source=inst.source,
                    lines=resolved.lines,
                    hint="use ADD to download a URL",
                )
            contents = tuple((c.path, c.data.encode()) for c in inst.contents)
            try:
                contents += tuple(download(u, inst.checksum) for u in urls)
            except BaleError as exc:
                raise _at(exc, inst.source, resolved) from None
            try:
                parse_chmod(inst.chmod)
            except InvalidArgument as exc:
                raise _at(exc, inst.source, resolved) from None
            plan = CopyPlan(
                sources=tuple(s for s in inst.sources if s not in urls),
                dest=dest_path(step.workdir, inst.dest),
                chown=inst.chown,
                chmod=inst.chmod or ("600" if urls else ""),
                add=inst.is_add,
                contents=contents,
                parents=inst.parents,
                excludes=inst.excludes,
            )
            inputs: tuple[str, ...] = (fs,)
            checksum = ""
            from_other = True
            source_ctx = ctx
            if inst.excludes:
                source_ctx = ctx.narrowed(_excluder(inst.excludes, plan.sources))
            if step.from_stage is not None:
                inputs = (fs, stage_fs[step.from_stage])
            elif inst.from_ in req.named_dirs:
                from_other = False
                source_ctx = BuildContext(req.named_dirs[inst.from_], meta=self.store.meta)
                if inst.excludes:
                    source_ctx = source_ctx.narrowed(_excluder(inst.excludes, plan.sources))
            elif inst.from_:
                if req.image_lookup is None:
                    raise InvalidArgument(f"COPY --from={inst.from_}: no image source")
                image = _lookup(req, inst.from_, stage, inst, resolved)
                inputs = (fs, self._image_vertex(graph, image, stage, keys, "COPY --from"))
            else:
                from_other = False
            if not from_other:
                try:
                    checksum = source_ctx.checksum(
                        [m for s in plan.sources for m in source_ctx.match(s)]
                    )
                except NotFound as exc:
                    raise _at(exc, inst.source, resolved) from None
            definition = {
                "sources": list(plan.sources),
                "dest": plan.dest,
                "chown": plan.chown,
                "chmod": plan.chmod,
                "add": plan.add,
                "contents": [[n, hashlib.sha256(d).hexdigest()] for n, d in plan.contents],
                "context": inst.from_ if inst.from_ in req.named_dirs else "",
                "parents": plan.parents,
                "excludes": list(inst.excludes),
            }
            v = Vertex.make(
                "copy",
                definition,
                inputs,
                name=f"{label} {inst.original.strip()}",
                platform=str(stage.platform),
                source=inst.source,
                payload={
                    "plan": plan,
                    "resolved": resolved,
                    "ctx": source_ctx,
                    "from_stage": from_other,
                },
            )
            keys[v.digest] = (v.digest + checksum, self._nocache(req, stage))
            return graph.add(v), HistoryEntry(
                created=created, created_by=text, comment=HISTORY_COMMENT
            )
        workdir = (
            posixpath.normpath(posixpath.join(step.workdir or "/", inst.path))
            if isinstance(inst, ins.Workdir)
            else "/"
        )
        if workdir != "/":
            # As BuildKit: WORKDIR makes its directory (a layer only if it was missing).
            v = Vertex.make(
                "mkdir",
                {"path": workdir, "user": step.user},
                (fs,),
                name=f"{label} {inst.original.strip()}",
                platform=str(stage.platform),
                source=inst.source,
                payload={"resolved": resolved},
            )
            keys[v.digest] = (v.digest, self._nocache(req, stage))
            return graph.add(v), HistoryEntry(
                created=created, created_by=text, comment=HISTORY_COMMENT
            )
        return fs, HistoryEntry(
            created=created, created_by=text, comment=HISTORY_COMMENT, empty_layer=True
        )

    def _bind_checksums(
        self, inst: ins.Run, req: BuildRequest, ctx: BuildContext, resolved: ResolvedBuild
    ) -> str:
        """Checksums of the context files a RUN bind-mounts: editing them re-runs the step."""
        parts = []
        for m in inst.mounts:
            if m.type != "bind" or (m.from_ and m.from_ not in req.named_dirs):
                continue  # stages are keyed by their content when the step runs
            source = (
                ctx if not m.from_ else BuildContext(req.named_dirs[m.from_], meta=self.store.meta)
            )
            try:
                parts.append(source.checksum(source.match(m.source or ".")))
            except NotFound as exc:
                raise _at(exc, inst.source, resolved) from None
        return "".join(f"\0bind:{p}" for p in parts)

    def _nocache(self, req: BuildRequest, stage: ResolvedStage) -> str:
        if req.no_cache or (stage.name and stage.name in req.no_cache_filter):
            return uuid.uuid4().hex  # a key no record has
        return ""

    # -- solving -------------------------------------------------------------------------

    def solve(self, req: BuildRequest) -> list[PlatformResult]:
        graph, results, keys = self.plan(req)
        self._bases = list(req.bases.values())
        solver: Solver[str, FsState] = Solver(req.jobs)
        with self.store.lease() as lease:

            def job(digest: str, done: dict[str, FsState]) -> FsState:
                return self._run_vertex(
                    graph.vertices[digest],
                    done,
                    self._runtime_key(graph.vertices[digest], done, keys[digest]),
                    req,
                    lease,
                    solver,
                )

            # A cancelled build (Ctrl-C, or a failed step) stops the steps still running:
            # the executor waits for its process, so the process has to end.
            finished = threading.Event()
            watcher = threading.Thread(
                target=_stop_steps_on_cancel, args=(solver.cancel_event, finished), daemon=True
            )
            watcher.start()
            try:
                states = solver.run(graph.deps(), job)
            finally:
                finished.set()
                watcher.join()
            return [_finish(r, states, req.source_date_epoch) for r in results]

    def _run_vertex(
        self,
        v: Vertex,
        done: dict[str, FsState],
        key: str,
        req: BuildRequest,
        lease: Lease,
        solver: Solver[str, FsState],
    ) -> FsState:
        if solver.cancel_event.is_set():
            raise StepError("cancelled", vertex=v.digest)
        if v.kind == "scratch":
            return FsState(key=key)
        if v.kind == "image":
            image: BaseImage = v.payload
            self.sink.emit(pg.Event("done", v.digest, v.name, platform=v.platform))
            return FsState(image.layers, key, parse_time(image.config.created))
        parent = done[v.inputs[0]]
        cached = None if "nocache" in key else self._cache_lookup(key)
        if cached is not None:
            self.sink.emit(pg.Event("cached", v.digest, v.name, platform=v.platform))
            layer, when = cached
            if layer:
                lease.add(layer.descriptor.digest)
            return FsState(parent.layers + ((layer,) if layer else ()), key, when)
        start = time.monotonic()
        self.sink.emit(
            pg.Event("start", v.digest, v.name, platform=v.platform, emulation=self._emulation(v))
        )
        try:
            layer = self._execute(v, parent, done, req, lease)
        except BaleError as exc:
            self.sink.emit(
                pg.Event("error", v.digest, v.name, message=str(exc), platform=v.platform)
            )
            if isinstance(exc, (StepError, DockerfileError)) or v.source is None:
                raise
            # Anything else a step meets (an unknown USER, a bad path) points at its line.
            raise _at(exc, v.source, v.payload["resolved"]) from None
        now = time.time()
        if not key.startswith("nocache-"):
            self._cache_store(key, layer, now)
        self.sink.emit(
            pg.Event(
                "done", v.digest, v.name, platform=v.platform, duration=time.monotonic() - start
            )
        )
        return FsState(parent.layers + ((layer,) if layer else ()), key, now)

    def _runtime_key(self, v: Vertex, done: dict[str, FsState], own: tuple[str, str]) -> str:
        """A step's cache key: its definition (and the context files it reads), the key of
        the state it builds on, and for another stage it copies from, the checksum of the
        files it copies (as BuildKit checksums sources: a rebuilt stage that made the same
        files keeps what copies them cached); for a stage mounted into a RUN, its chain id."""
        definition, salt = own
        if v.kind in ("image", "scratch"):
            return definition
        inputs = [done[v.inputs[0]].key]
        if v.kind == "copy" and v.payload["from_stage"]:
            inputs.append(f"files:{self._stage_files_checksum(v, done[v.inputs[1]])}")
        else:
            inputs += [f"content:{done[i].chain_id()}" for i in v.inputs[1:]]
        return _key(definition, inputs, salt)

    def _stage_files_checksum(self, v: Vertex, source: FsState) -> str:
        plan: CopyPlan = v.payload["plan"]
        root = self._rootfs(source)
        view_key = f"view-{uuid.uuid4().hex}"
        try:
            with (
                self.snapshots.prepared(view_key, root) as view,
                mounted(view.mounts, self.snapshots.root / "mnt") as src_root,
            ):
                ctx = BuildContext(Path(src_root))
                if plan.excludes:
                    ctx = ctx.narrowed(_excluder(plan.excludes, plan.sources))
                return ctx.checksum([m for s in plan.sources for m in ctx.match(s)])
        except (NotFound, InvalidArgument) as exc:
            resolved: ResolvedBuild = v.payload["resolved"]
            raise _at(exc, v.source, resolved) from None

    def _emulation(self, v: Vertex) -> str:
        if v.kind != "exec":
            return ""
        return "native" if is_native(Platform.parse(v.platform)) else "emulated"

    def _rootfs(self, state: FsState) -> str:
        from bale.store.layers import unpack

        self._fetch_missing(state)
        sources = [
            unpack.LayerSource(layer.diff_id, _opener(self.store, layer.descriptor))
            for layer in state.layers
        ]
        return unpack.unpack_chain(self.snapshots, sources)

    def _fetch_missing(self, state: FsState) -> None:
        """Layers of a pulled base arrive only now, when a step needs the filesystem."""
        missing = {
            layer.descriptor.digest
            for layer in state.layers
            if not self.store.content.exists(layer.descriptor.digest)
        }
        if not missing:
            return
        with self._fetch_lock:
            for image in self._bases:
                if image.fetch is not None and missing & {
                    x.descriptor.digest for x in image.layers
                }:
                    image.fetch()

    def _execute(
        self, v: Vertex, parent: FsState, done: dict[str, FsState], req: BuildRequest, lease: Lease
    ) -> LayerRef | None:
        base = self._rootfs(parent)
        key = f"build-{uuid.uuid4().hex}"
        with self.snapshots.prepared(key, base) as active:
            if v.kind == "exec":
                self._exec(v, active.mounts, req, done)
            else:
                with mounted(active.mounts, self.snapshots.root / "mnt") as rootfs:
                    if v.kind == "mkdir":
                        _mkdir(rootfs, v.definition["path"], v.definition["user"])
                    else:
                        self._copy(v, rootfs, done)
            self.snapshots.drop_copied_up_dirs(key)
            layer = self._diff(key, base, req, lease)
            if layer is not None:
                name = FsState((*parent.layers, layer)).chain_id()
                if self.snapshots.lookup(name) is None:
                    try:
                        self.snapshots.commit(name, key)
                    except BaleError:
                        pass  # committed concurrently; ours is removed on exit
        return layer

    def _stage_mount_sources(
        self, v: Vertex, done: dict[str, FsState], stack: contextlib.ExitStack
    ) -> dict[int, str]:
        """RUN --mount=type=bind,from=STAGE|IMAGE: each such filesystem, mounted read-only
        for the step (by mount index)."""
        out: dict[int, str] = {}
        for i, digest in v.payload["mount_inputs"]:
            root = self._rootfs(done[digest])
            view = stack.enter_context(self.snapshots.prepared(f"view-{uuid.uuid4().hex}", root))
            out[i] = stack.enter_context(mounted(view.mounts, self.snapshots.root / "mnt"))
        return out

    def _get_executor(self) -> Executor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = self._make_executor()
            return self._executor

    def _exec(
        self,
        v: Vertex,
        rootfs_mounts: tuple[Mount, ...],
        req: BuildRequest,
        done: dict[str, FsState],
    ) -> None:
        from bale.builder import executor as ex

        step: Step = v.payload["step"]
        resolved: ResolvedBuild = v.payload["resolved"]
        inst = step.instruction
        assert isinstance(inst, ins.Run)
        with contextlib.ExitStack() as stack:
            scratch = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="bale-heredoc-", dir=_SCRATCH)
            )
            sources = self._stage_mount_sources(v, done, stack)
            # Executable heredocs (`#!` bodies) are files mounted read-only, as in BuildKit.
            files: list[RunMount] = []
            for i, f in enumerate(v.payload["files"]):
                host = os.path.join(scratch, str(i))
                with open(host, "w") as out:
                    out.write(f.data)
                os.chmod(host, f.mode)
                files.append(ex.BindMount(target=f.path, source=host, readonly=True))
            spec = ex.RunSpec(
                argv=tuple(v.definition["argv"]),
                env=(*v.definition["env"], *_proxy_env(step)),
                cwd=v.definition["cwd"],
                user=step.user,
                platform=Platform.parse(v.platform),
                network="none" if v.definition["network"] == "none" else "default",
                mounts=(*_run_mounts(inst, req, resolved, v, sources), *files),
            )
            code = self._get_executor().run(spec, rootfs_mounts, _StepOutput(self.sink, v))
        if code != 0:
            raise StepError(
                f"failed to solve: process {go_quote(' '.join(spec.argv))} did not complete "
                f"successfully: exit code: {code}",
                vertex=v.digest,
                source=v.source,
                lines=resolved.lines,
                exit_code=code,
            )

    def _copy(self, v: Vertex, rootfs: str, done: dict[str, FsState]) -> None:
        plan: CopyPlan = v.payload["plan"]
        resolved: ResolvedBuild = v.payload["resolved"]
        try:
            # Context files land root-owned; another stage's or image's keep their owners.
            owner: tuple[int, int] | None = chown_ids(rootfs, plan.chown)
            if owner is None and not v.payload["from_stage"]:
                owner = (0, 0)
            if v.payload["from_stage"]:
                src = self._rootfs(done[v.inputs[1]])
                view_key = f"view-{uuid.uuid4().hex}"
                with (
                    self.snapshots.prepared(view_key, src) as view,
                    mounted(view.mounts, self.snapshots.root / "mnt") as src_root,
                ):
                    stage_root = BuildContext(Path(src_root))
                    if plan.excludes:
                        stage_root = stage_root.narrowed(_excluder(plan.excludes, plan.sources))
                    apply_copy(plan, stage_root, rootfs, owner)
            else:
                apply_copy(plan, v.payload["ctx"], rootfs, owner)
        except (NotFound, InvalidArgument) as exc:
            raise _at(exc, v.source, resolved) from None

    def _diff(self, key: str, base: str, req: BuildRequest, lease: Lease) -> LayerRef | None:
        source = self.snapshots.diff_source(key)
        ref = f"diff-{key}"
        writer = self.store.content.writer(ref)
        from bale.store.layers.diff import DiffOptions, LayerBlob, diff_trees, diff_upperdir

        options = DiffOptions(compression=req.compression, source_date_epoch=req.source_date_epoch)
        try:
            blob: LayerBlob
            if source.kind == "upperdir":
                blob = diff_upperdir(source.upper, writer, options)
            else:
                blob = diff_trees(source.lower, source.upper, writer, options)
            if blob.diff_id == EMPTY_TAR:
                writer.abort()
                return None
            lease.add(blob.digest)
            try:
                writer.commit(blob.size, blob.digest)
            except BaleError as exc:
                if "already exists" not in exc.message:
                    raise
        except BaseException:
            writer.abort()
            raise
        del base
        return LayerRef(Descriptor(blob.media_type, blob.digest, blob.size), blob.diff_id)

    # -- cache ---------------------------------------------------------------------------

    def _cache_lookup(self, key: str) -> tuple[LayerRef | None, float] | None:
        """(layer or None for a step that changed nothing, when it ran), or None: a miss."""
        rows = self.store.meta.query(
            "SELECT layer, diff_id, created FROM build_cache WHERE key = ?", (key,)
        )
        if not rows:
            return None
        layer_json, diff_id, created = rows[0]
        if layer_json is None:
            return None, float(created)
        desc = Descriptor.from_json(json.loads(str(layer_json)))
        if not self.store.content.exists(desc.digest):
            return None
        return LayerRef(desc, Digest.parse(str(diff_id))), float(created)

    def _cache_store(self, key: str, layer: LayerRef | None, now: float) -> None:
        with self.store.meta.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO build_cache (key, layer, diff_id, created, last_used) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    json.dumps(layer.descriptor.to_json()) if layer else None,
                    str(layer.diff_id) if layer else None,
                    now,
                    now,
                ),
            )
            if layer is not None:
                db.execute(
                    "INSERT OR IGNORE INTO pins (owner, digest) VALUES (?, ?)",
                    (f"cache:{key}", str(layer.descriptor.digest)),
                )


def _stop_steps_on_cancel(cancelled: threading.Event, finished: threading.Event) -> None:
    """Once `cancelled` is set, stop the steps still running until `finished` is set."""
    # Polls `finished` so that the end of a build is never held up by this thread.
    while not finished.wait(0.1):
        if cancelled.is_set() and "bale.builder.executor.process" in sys.modules:
            from bale.builder.executor.process import stop_running

            stop_running()


class _StepOutput:
    """Adapts the executor's output to progress events of the step's vertex."""

    def __init__(self, sink: pg.ProgressSink, v: Vertex) -> None:
        self._sink = sink
        self._v = v

    def output(self, fd: int, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        self._sink.emit(
            pg.Event(
                "log",
                self._v.digest,
                self._v.name,
                message=text,
                platform=self._v.platform,
                stream=fd,
            )
        )

    def status(self, text: str) -> None:
        self._sink.emit(
            pg.Event(
                "status", self._v.digest, self._v.name, message=text, platform=self._v.platform
            )
        )


def _run_mounts(
    inst: ins.Run,
    req: BuildRequest,
    resolved: ResolvedBuild,
    v: Vertex,
    stage_roots: dict[int, str],
) -> list[RunMount]:
    from bale.builder import executor as ex

    out: list[RunMount] = []
    for index, m in enumerate(inst.mounts):
        if m.type == "cache":
            sharing = m.sharing or "shared"
            out.append(
                ex.CacheMount(
                    target=m.target,
                    id=m.id or m.target,
                    sharing=sharing if sharing in ("shared", "private", "locked") else "shared",  # type: ignore[arg-type]
                    readonly=False,
                    mode=m.mode if m.mode is not None else 0o755,
                    uid=m.uid or 0,
                    gid=m.gid or 0,
                )
            )
        elif m.type == "tmpfs":
            out.append(ex.TmpfsMount(target=m.target, size=m.size or 0))
        elif m.type == "secret":
            secret_id = m.id or os.path.basename(m.target)
            data = req.secrets.get(secret_id)
            if data is None:
                if m.required:
                    raise StepError(
                        f"secret {secret_id} not found",
                        vertex=v.digest,
                        source=v.source,
                        lines=resolved.lines,
                        hint=f"pass it with --secret id={secret_id},src=FILE",
                    )
                continue
            out.append(
                ex.SecretMount(
                    id=secret_id,
                    data=data,
                    target=m.target,
                    mode=m.mode if m.mode is not None else 0o400,
                    uid=m.uid or 0,
                    gid=m.gid or 0,
                )
            )
        elif m.type == "ssh":
            if not req.ssh_socket:
                if m.required:
                    raise StepError("no SSH agent socket: pass --ssh default", vertex=v.digest)
                continue
            out.append(ex.SSHMount(socket=req.ssh_socket, id=m.id or "default", target=m.target))
        elif m.type == "bind":
            if index in stage_roots:
                # Inside the stage's filesystem, links resolved as the stage would see them.
                source = resolve(stage_roots[index], m.source or "/", follow_final=True)
            elif m.from_ and m.from_ in req.named_dirs:
                source = _inside(str(req.named_dirs[m.from_]), m.source)
            elif m.from_:
                raise StepError(
                    f"RUN --mount=type=bind,from={m.from_}: no stage, image or named context "
                    "by that name",
                    vertex=v.digest,
                    source=v.source,
                    lines=resolved.lines,
                )
            else:
                source = _inside(str(req.context), m.source)
            out.append(ex.BindMount(target=m.target, source=source, readonly=m.readonly))
    return out


def _opener(store: Store, desc: Descriptor) -> Callable[[], Any]:
    def open_blob() -> Any:
        return store.content.open(desc.digest, desc.size)

    return open_blob


def _key(own: str, inputs: list[str], salt: str) -> str:
    body = "\0".join([own, *inputs, salt])
    prefix = "nocache-" if salt else ""
    return prefix + hashlib.sha256(body.encode()).hexdigest()


def _rfc3339(ts: float) -> str:
    from bale.store.importer import rfc3339

    return rfc3339(ts)


def _with_labels(config: RuntimeConfig, labels: dict[str, str]) -> RuntimeConfig:
    if not labels:
        return config
    merged = dict(config.labels)
    merged.update(labels)
    return replace(config, labels=tuple(sorted(merged.items())))


def _excluder(patterns: tuple[str, ...], sources: tuple[str, ...]) -> Callable[[str], bool]:
    """COPY --exclude: patterns match a path relative to the context and relative to the
    source directory it is copied from (`COPY --exclude=*.log dir/ /x/` skips dir/a.log)."""
    rules = DockerIgnore.parse("\n".join(patterns))
    prefixes = [clean(s) + "/" for s in sources if clean(s) != "."]

    def excluded(rel: str) -> bool:
        if rules.excluded(rel):
            return True
        return any(rel.startswith(p) and rules.excluded(rel[len(p) :]) for p in prefixes)

    return excluded


def _finish(r: PlatformResult, states: dict[str, FsState], epoch: int | None) -> PlatformResult:
    """The platform's config with its layers and times: each step's history entry takes the
    time its state was made (SOURCE_DATE_EPOCH when set), the image the latest of them."""

    def when(state: str) -> float | None:
        return float(epoch) if epoch is not None else states[state].created if state else None

    pairs = list(zip(r.config.history, r.history_states, strict=True))
    known = [t for _, state in pairs if state and (t := when(state)) is not None]
    # Config-only steps on scratch have no state time: they take the image's.
    latest = max(known) if known else time.time()
    history = []
    # A step's entry is empty_layer exactly when it added no layer (a RUN that changed
    # nothing, an existing WORKDIR, ENV...): non-empty entries must match the layers 1:1.
    count = 0
    for entry, state in pairs:
        if state:
            at = when(state)
            layers_now = len(states[state].layers)
            entry = replace(
                entry,
                created=_rfc3339(latest if at is None else at),
                empty_layer=layers_now == count,
            )
            count = layers_now
        elif not entry.empty_layer:
            count += 1
        history.append(entry)
    created: float | None = latest if any(state for _, state in pairs) else None
    if created is None and epoch is not None:
        created = float(epoch)
    layers = states[r.fs_vertex].layers
    config = replace(
        r.config,
        diff_ids=tuple(layer.diff_id for layer in layers),
        history=tuple(history),
        created=_rfc3339(created)
        if created is not None
        else r.config.created or _rfc3339(time.time()),
    )
    return replace(r, config=config, layers=layers)


def _lookup(
    req: BuildRequest,
    ref: str,
    stage: ResolvedStage,
    inst: ins.Instruction,
    resolved: ResolvedBuild,
) -> BaseImage:
    """An image a step reads (COPY --from, RUN --mount from=); failures at the step's line."""
    assert req.image_lookup is not None
    try:
        return req.image_lookup(ref, stage.platform)
    except DockerfileError:
        raise
    except BaleError as exc:
        raise _at(exc, inst.source, resolved) from None


def _proxy_env(step: Step) -> list[str]:
    """Proxy build-args reach every RUN, in both spellings, without being declared and
    without being part of the cache key, as BuildKit passes them."""
    declared = {key for key, _ in step.build_env}
    out = []
    for key, value in step.args:
        if key not in PROXY_ARGS:
            continue
        for name in (key.upper(), key.lower()):
            if name not in declared:
                declared.add(name)
                out.append(f"{name}={value}")
    return out


def go_quote(text: str) -> str:
    """Go's %q, as BuildKit quotes the command in its error: `"` and `\\` escaped."""
    return json.dumps(text, ensure_ascii=False)


def _at(exc: BaleError, source: SourceRange | None, resolved: ResolvedBuild) -> DockerfileError:
    """A failure of a step's sources, reported at the step's Dockerfile lines."""
    return DockerfileError(exc.message, source=source, lines=resolved.lines, hint=exc.hint)


def _inside(root: str, path: str) -> str:
    """`path` under a context directory; `..` and links cannot lead out of it."""
    return resolve(os.path.realpath(root), path or "/", follow_final=True)


_COUNTED = (ins.Run, ins.Copy, ins.Workdir)


def _counted_steps(stage: ResolvedStage) -> int:
    return 1 + sum(isinstance(s.instruction, _COUNTED) for s in stage.steps)


def _mkdir(rootfs: str, path: str, user: str) -> None:
    """WORKDIR's directory inside the rootfs (links resolved there), made as BuildKit makes it:
    0755, and with its missing parents owned by the stage's USER."""
    from bale.builder.executor.users import resolve_user

    owner = resolve_user(rootfs, user) if user else None
    current = ""
    for part in (p for p in path.split("/") if p):
        current = f"{current}/{part}"
        target = resolve(rootfs, current, follow_final=True)
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
            if owner is not None:
                os.lchown(target, owner.uid, owner.gid)
        elif not os.path.isdir(target):
            raise InvalidArgument(f"WORKDIR {path}: {current} exists and is not a directory")


def download(url: str, checksum: str) -> tuple[str, bytes]:
    """ADD <url>: the file's name (the URL's last path part) and its verified bytes."""
    import httpx

    try:
        response = httpx.get(url, follow_redirects=True, timeout=120.0)
    except httpx.HTTPError as exc:
        raise InvalidArgument(f"failed to load cache key: {url}: {exc}") from None
    if response.status_code != 200:
        raise InvalidArgument(
            f"failed to load cache key: invalid response status {response.status_code} for {url}"
        )
    data = response.content
    if checksum:
        algorithm, _, expected = checksum.partition(":")
        if algorithm not in ("sha256", "sha384", "sha512") or not expected:
            raise InvalidArgument(f"unsupported --checksum {checksum!r}", hint="use sha256:<hex>")
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != expected:
            raise InvalidArgument(
                f"digest mismatch for {url}: expected {checksum}, got {algorithm}:{actual}"
            )
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
    return name, data


def chown_ids(rootfs: str, text: str) -> tuple[int, int] | None:
    """COPY --chown: numbers as given, names through the rootfs's /etc/passwd and /etc/group;
    without a group the gid is the uid, as Docker documents it."""
    if not text:
        return None
    user, _, group = text.partition(":")

    def lookup(table: str, name: str) -> int:
        if name.isdigit():
            return int(name)
        try:
            host = resolve(rootfs, f"etc/{table}", follow_final=True)
            with open(host, encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.rstrip("\n").split(":")
                    if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                        return int(fields[2])
        except OSError:
            pass
        raise InvalidArgument(
            f"unable to convert uid/gid chown string to host mapping: "
            f"no such {'user' if table == 'passwd' else 'group'} {name!r}"
        )

    uid = lookup("passwd", user)
    gid = lookup("group", group) if group else uid
    return uid, gid


HISTORY_COMMENT = "buildkit.dockerfile.v0"


def created_by(step: Step) -> str:
    """The history line BuildKit writes for a step (what `docker history` shows): RUN with
    its build-args and argv, values expanded, CMD/ENTRYPOINT as their final argv; steps that
    make a layer end with `# buildkit`."""
    inst = step.instruction
    if isinstance(inst, ins.Run):
        env = dict(step.build_env)
        args = [f"{k}={env.get(k, v)}" for k, v in step.args if k not in PROXY_ARGS]
        prefix = [f"|{len(args)}", *args] if args else []
        return "RUN " + " ".join([*prefix, *run_command(step).argv]) + " # buildkit"
    if isinstance(inst, ins.Copy):
        sources = [*inst.sources, *(c.path for c in inst.contents)]
        return f"{inst.name} {' '.join(sources)} {inst.dest} # buildkit"
    if isinstance(inst, ins.Workdir):
        path = posixpath.normpath(posixpath.join(step.workdir or "/", inst.path))
        return f"WORKDIR {path} # buildkit"
    if isinstance(inst, ins.Env | ins.Label):
        return f"{inst.name} " + " ".join(f"{p.key}={p.value}" for p in inst.pairs)
    if isinstance(inst, ins.Cmd | ins.Entrypoint):
        argv = [*step.shell, *inst.command] if inst.prepend_shell else list(inst.command)
        return f"{inst.name} [" + " ".join(go_quote(a) for a in argv) + "]"
    if isinstance(inst, ins.User):
        return f"USER {inst.user}"
    body = inst.original.strip()
    keyword, _, rest = body.partition(" ")
    return f"{keyword.upper()} {rest.strip()}"
