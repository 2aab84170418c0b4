"""The solve loop: every vertex of a build definition, each as soon as its inputs are done.

A step whose cache key has a record reuses the record's layer; otherwise its op runs on a
snapshot of its parent (`bale.builder.ops`), and what it changed becomes a layer in the
content store and a cache record.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bale.builder import progress as pg
from bale.builder.cache import CacheSource, StepHistory
from bale.builder.cachekey import layers_key, state_key, step_key
from bale.builder.context import BuildContext, entries_checksum
from bale.builder.explain import KeyParts, explain
from bale.builder.ops.copy import copy_content_key, copy_to_layer, run_copy
from bale.builder.ops.exec import run_exec
from bale.builder.ops.http import Downloads
from bale.builder.ops.mkdir import run_mkdir
from bale.builder.result import (
    BuildResult,
    HistoryState,
    PlatformResult,
    ScanTarget,
    StepRecord,
)
from bale.builder.runtime import Runtime, located
from bale.builder.solver import Solver
from bale.builder.state import FsState, LayerRef
from bale.builder.usage import platform_usage
from bale.emulation.modes import is_native
from bale.errors import AlreadyExists, BaleError, StepError
from bale.frontends.graph import (
    BindMountSpec,
    BuildDefinition,
    CopyOp,
    ExecOp,
    ImageOp,
    MkdirOp,
    ScratchOp,
    Vertex,
)
from bale.mounts import mounted
from bale.oci.config import parse_time
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Manifest

if TYPE_CHECKING:
    from bale.store.content import Writer
    from bale.store.layers.diff import DiffOptions, LayerBlob
    from bale.store.layers.tarwriter import TarEmitter

EMPTY_TAR = Digest("sha256", hashlib.sha256(b"\0" * 1024).hexdigest())


class Engine:
    def __init__(
        self,
        rt: Runtime,
        cache: CacheSource,
        history: StepHistory | None = None,
        scopes: Mapping[str, Runtime] | None = None,
    ) -> None:
        self.rt = rt
        self.cache = cache
        self.history = history
        # A graph of several builds: the runtime (contexts, secrets) of each vertex scope.
        self.scopes: Mapping[str, Runtime] = scopes or {}
        # The first vertex that failed, so a caller can say whose build it was.
        self.failed: str = ""
        self._downloads = Downloads()
        self._records: dict[str, StepRecord] = {}
        self._kinds: dict[str, str] = {}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def solve(self, definition: BuildDefinition) -> BuildResult:
        graph = definition.graph
        self._kinds = {d: v.op.kind for d, v in graph.vertices.items()}
        solver: Solver[str, FsState] = Solver(self.rt.env.jobs)
        self._cancelled = solver.cancel_event

        def job(digest: str, done: dict[str, FsState]) -> FsState:
            if solver.cancel_event.is_set():
                raise StepError("cancelled", vertex=digest)
            return self._vertex(graph.vertices[digest], done)

        # A cancelled build (Ctrl-C, or a failed step) stops the steps still running: the
        # executor waits for its process, so the process has to end.
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
            if self.history is not None:
                self.history.flush(time.time())
        platforms = []
        for target in definition.targets:
            history = tuple(
                HistoryState(states[d].created, len(states[d].layers)) if d else None
                for d in target.history_vertices
            )
            platforms.append(
                PlatformResult(
                    target.platform,
                    target.config,
                    states[target.vertex].layers,
                    history,
                    target.materials,
                    platform_usage(graph, target.vertex, self._downloads),
                    tuple(ScanTarget(name, states[v].layers) for name, v in target.scan_stages),
                    target.scan_context,
                    target.vertex,
                )
            )
        return BuildResult(
            tuple(platforms),
            self.rt.env.source_date_epoch,
            compression=self.rt.env.compression,
            steps=tuple(self._records.values()),
        )

    def _vertex(self, v: Vertex, done: dict[str, FsState]) -> FsState:
        op = v.op
        if isinstance(op, ScratchOp):
            return FsState(key=layers_key(()))
        if isinstance(op, ImageOp):
            self.rt.sink.emit(
                pg.Event("done", v.digest, v.name, platform=v.platform, inputs=v.inputs)
            )
            return self._image_state(op)
        inputs = [done[i] for i in v.inputs]
        try:
            content, files = self._content(v, inputs)
        except BaleError as exc:
            self._fail(v)
            raise located(exc, v.location) from None
        key = step_key(v, inputs, content, self._content_inputs(v))
        parent = v.inputs[0] if v.inputs else ""
        if not v.ignore_cache:
            hit = self.cache.lookup(key)
            if hit is not None:
                self.rt.sink.emit(
                    pg.Event("cached", v.digest, v.name, platform=v.platform, inputs=v.inputs)
                )
                if hit.layer is not None:
                    self.rt.lease.add(hit.layer.descriptor.digest)
                self._record(StepRecord(v.digest, key, hit.layer, hit.created, parent, False))
                return self._state(inputs[0], key, hit.layer, hit.created)
        reason = (
            "--no-cache" if v.ignore_cache else self._miss_reason(v, key, inputs, content, files)
        )
        start = time.monotonic()
        self.rt.sink.emit(
            pg.Event(
                "start",
                v.digest,
                v.name,
                platform=v.platform,
                emulation=_emulation(v),
                reason=reason,
                inputs=v.inputs,
            )
        )
        try:
            layer = self._execute(v, inputs)
        except BaleError as exc:
            # A step stopped because another one failed (or Ctrl-C) was cancelled, not failed:
            # BuildKit shows it CANCELED, and the build reports the first failure.
            kind = "canceled" if self._cancelled.is_set() else "error"
            self._fail(v)
            self.rt.sink.emit(
                pg.Event(
                    kind,
                    v.digest,
                    v.name,
                    message=str(exc),
                    platform=v.platform,
                    exit_code=getattr(exc, "exit_code", None),
                )
            )
            raise located(exc, v.location) from None
        now = time.time()
        self.cache.record(key, layer, now)
        self._record(StepRecord(v.digest, key, layer, now, parent, True))
        self.rt.sink.emit(
            pg.Event(
                "done", v.digest, v.name, platform=v.platform, duration=time.monotonic() - start
            )
        )
        return self._state(inputs[0], key, layer, now)

    def _fail(self, v: Vertex) -> None:
        with self._lock:
            self.failed = self.failed or v.digest

    def _rt(self, v: Vertex) -> Runtime:
        return self.scopes.get(v.scope, self.rt)

    def _record(self, record: StepRecord) -> None:
        with self._lock:
            self._records[record.vertex] = record

    def _miss_reason(
        self,
        v: Vertex,
        key: str,
        inputs: Sequence[FsState],
        content: str,
        files: list[tuple[str, str]],
    ) -> str:
        """Why the step runs (see bale.builder.explain); remembers its parts for next time."""
        if self.history is None or not v.step:
            return ""
        step = f"{self._rt(v).env.step_prefix}|{v.step}"
        parts = KeyParts.of(v, [s.key for s in inputs], content, files)
        last = self.history.get(step)
        self.history.put(step, key, parts)
        graph_kinds = {i: self._kinds.get(d, "") for i, d in enumerate(v.inputs)}
        if last is None:
            return explain(v, parts, None, False, graph_kinds)
        return explain(v, parts, last[1], last[0] == key, graph_kinds)

    def _content_inputs(self, v: Vertex) -> frozenset[int]:
        """The inputs a RUN reads only through bind mounts of a stage's files (not an image,
        whose layers already name its content, nor the step's own root)."""
        op = v.op
        if not isinstance(op, ExecOp):
            return frozenset()
        return frozenset(
            m.input
            for m in op.mounts
            if isinstance(m, BindMountSpec)
            and m.input not in (None, 0)
            and m.target != "/"
            and self._kinds.get(v.inputs[m.input]) != ImageOp.kind
        )

    @staticmethod
    def _state(parent: FsState, key: str, layer: LayerRef | None, when: float) -> FsState:
        layers = parent.layers + ((layer,) if layer else ())
        return FsState(layers, state_key(key, layer), when)

    def _image_state(self, op: ImageOp) -> FsState:
        store = self.rt.store
        manifest = Manifest.parse(store.content.read_bytes(op.manifest))
        config = store.config(manifest.config)
        layers = tuple(
            LayerRef(desc, diff_id)
            for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
        )
        return FsState(layers, layers_key(layers), parse_time(config.created))

    def _content(self, v: Vertex, inputs: Sequence[FsState]) -> tuple[str, list[tuple[str, str]]]:
        """The part of a step's key that comes from outside the graph (see cachekey), and
        the (path, digest) entries behind it."""
        op = v.op
        rt = self._rt(v)
        if isinstance(op, CopyOp):
            return copy_content_key(rt, op, inputs, self._downloads)
        if isinstance(op, ExecOp):
            # Context files a RUN bind-mounts: editing them re-runs the step. A stage's files
            # it bind-mounts count by content too, as BuildKit's content-based cache of
            # mounts: a stage rebuilt into the same files keeps the step cached.
            parts = []
            files: list[tuple[str, str]] = []
            by_content = self._content_inputs(v)
            for m in op.mounts:
                if not isinstance(m, BindMountSpec):
                    continue
                if m.input is None:
                    ctx = rt.env.context(m.context)
                    entries = ctx.entries(ctx.match(m.source or "."))
                elif m.input in by_content:
                    with rt.rootfs.view(inputs[m.input]) as root:
                        ctx = BuildContext(Path(root))
                        entries = ctx.entries(ctx.match(m.source or "."), owners=True)
                    parts.append(f"mount{m.input}")
                else:
                    continue
                parts.append(entries_checksum(entries))
                files += entries
            return "\0".join(parts), files
        return "", []

    def _execute(self, v: Vertex, inputs: Sequence[FsState]) -> LayerRef | None:
        rt = self._rt(v)
        parent = inputs[0]
        op = v.op
        if isinstance(op, CopyOp) and not op.add:
            return copy_to_layer(rt, op, inputs, self._downloads, self._write_layer)
        base = rt.rootfs.snapshot(parent)
        key = f"build-{uuid.uuid4().hex}"
        with rt.snapshots.prepared(key, base) as active:
            op = v.op
            if isinstance(op, ExecOp):
                run_exec(rt, v, op, active.mounts, inputs)
            else:
                with mounted(active.mounts, rt.snapshots.root / "mnt") as rootfs:
                    if isinstance(op, MkdirOp):
                        run_mkdir(rootfs, op)
                    elif isinstance(op, CopyOp):
                        run_copy(rt, op, rootfs, inputs, self._downloads)
            rt.snapshots.drop_copied_up_dirs(key)
            # A RUN is a layer even when it changed nothing, as BuildKit exports it.
            layer = self._diff(key, keep_empty=isinstance(op, ExecOp))
            if layer is not None:
                name = FsState((*parent.layers, layer)).chain_id()
                lease = rt.rootfs.lease
                if rt.snapshots.lookup(name, lease=lease) is None:
                    try:
                        rt.snapshots.commit(name, key, lease=lease)
                    except AlreadyExists:
                        # Committed concurrently; ours is removed on exit.
                        rt.snapshots.lookup(name, lease=lease)
        return layer

    def _diff(self, key: str, *, keep_empty: bool = False) -> LayerRef | None:
        # The tar machinery loads only when a step runs: a cached build never needs it.
        from bale.store.layers.diff import diff_trees, diff_upperdir

        source = self.rt.snapshots.diff_source(key)
        if source.kind == "upperdir":
            return self._layer(lambda w, o: diff_upperdir(source.upper, w, o), keep_empty)
        return self._layer(lambda w, o: diff_trees(source.lower, source.upper, w, o), keep_empty)

    def _write_layer(self, emit: Callable[[TarEmitter], None]) -> LayerRef | None:
        from bale.store.layers.diff import write_layer

        return self._layer(lambda w, o: write_layer(w, o, emit))

    def _layer(
        self, make: Callable[[Writer, DiffOptions], LayerBlob], keep_empty: bool = False
    ) -> LayerRef | None:
        """A layer into the content store (leased), or None when it holds nothing (unless
        `keep_empty`)."""
        from bale.store.layers.diff import DiffOptions

        rt = self.rt
        writer = rt.store.content.writer(f"layer-{uuid.uuid4().hex}")
        options = DiffOptions(
            compression=rt.env.compression, source_date_epoch=rt.env.source_date_epoch
        )
        try:
            blob = make(writer, options)
            if blob.diff_id == EMPTY_TAR and not keep_empty:
                writer.abort()
                return None
            rt.lease.add(blob.digest)
            try:
                writer.commit(blob.size, blob.digest)
            except AlreadyExists:
                pass  # the same layer was written before: the blob is there
        except BaseException:
            writer.abort()
            raise
        return LayerRef(Descriptor(blob.media_type, blob.digest, blob.size), blob.diff_id)


def _emulation(v: Vertex) -> str:
    if not isinstance(v.op, ExecOp):
        return ""
    return "native" if is_native(v.op.platform) else "emulated"


def _stop_steps_on_cancel(cancelled: threading.Event, finished: threading.Event) -> None:
    """Once `cancelled` is set, stop the steps still running until `finished` is set."""
    # Polls `finished` so that the end of a build is never held up by this thread.
    while not finished.wait(0.1):
        if cancelled.is_set() and "bale.builder.executor.process" in sys.modules:
            from bale.builder.executor.process import stop_running

            stop_running()
