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
from collections.abc import Sequence

from bale.builder import progress as pg
from bale.builder.cache import BuildCache
from bale.builder.cachekey import layers_key, state_key, step_key
from bale.builder.ops.copy import copy_content_key, run_copy
from bale.builder.ops.exec import run_exec
from bale.builder.ops.http import Downloads
from bale.builder.ops.mkdir import run_mkdir
from bale.builder.result import BuildResult, HistoryState, PlatformResult, ScanTarget
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

EMPTY_TAR = Digest("sha256", hashlib.sha256(b"\0" * 1024).hexdigest())


class Engine:
    def __init__(self, rt: Runtime, cache: BuildCache) -> None:
        self.rt = rt
        self.cache = cache
        self._downloads = Downloads()

    def solve(self, definition: BuildDefinition) -> BuildResult:
        graph = definition.graph
        solver: Solver[str, FsState] = Solver(self.rt.env.jobs)

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
                )
            )
        return BuildResult(
            tuple(platforms), self.rt.env.source_date_epoch, compression=self.rt.env.compression
        )

    def _vertex(self, v: Vertex, done: dict[str, FsState]) -> FsState:
        op = v.op
        if isinstance(op, ScratchOp):
            return FsState(key=layers_key(()))
        if isinstance(op, ImageOp):
            self.rt.sink.emit(pg.Event("done", v.digest, v.name, platform=v.platform))
            return self._image_state(op)
        inputs = [done[i] for i in v.inputs]
        try:
            key = step_key(v, inputs, self._content(v, inputs))
        except BaleError as exc:
            raise located(exc, v.location) from None
        if not v.ignore_cache:
            hit = self.cache.lookup(key)
            if hit is not None:
                self.rt.sink.emit(pg.Event("cached", v.digest, v.name, platform=v.platform))
                if hit.layer is not None:
                    self.rt.lease.add(hit.layer.descriptor.digest)
                return self._state(inputs[0], key, hit.layer, hit.created)
        start = time.monotonic()
        self.rt.sink.emit(
            pg.Event("start", v.digest, v.name, platform=v.platform, emulation=_emulation(v))
        )
        try:
            layer = self._execute(v, inputs)
        except BaleError as exc:
            self.rt.sink.emit(
                pg.Event("error", v.digest, v.name, message=str(exc), platform=v.platform)
            )
            raise located(exc, v.location) from None
        now = time.time()
        self.cache.record(key, layer, now)
        self.rt.sink.emit(
            pg.Event(
                "done", v.digest, v.name, platform=v.platform, duration=time.monotonic() - start
            )
        )
        return self._state(inputs[0], key, layer, now)

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

    def _content(self, v: Vertex, inputs: Sequence[FsState]) -> str:
        """The part of a step's key that comes from outside the graph (see cachekey)."""
        op = v.op
        if isinstance(op, CopyOp):
            return copy_content_key(self.rt, op, inputs, self._downloads)
        if isinstance(op, ExecOp):
            # Context files a RUN bind-mounts: editing them re-runs the step.
            parts = []
            for m in op.mounts:
                if isinstance(m, BindMountSpec) and m.input is None:
                    ctx = self.rt.env.context(m.context)
                    parts.append(ctx.checksum(ctx.match(m.source or ".")))
            return "\0".join(parts)
        return ""

    def _execute(self, v: Vertex, inputs: Sequence[FsState]) -> LayerRef | None:
        rt = self.rt
        parent = inputs[0]
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
            layer = self._diff(key)
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

    def _diff(self, key: str) -> LayerRef | None:
        # The tar machinery loads only when a step runs: a cached build never needs it.
        from bale.store.layers.diff import DiffOptions, LayerBlob, diff_trees, diff_upperdir

        rt = self.rt
        source = rt.snapshots.diff_source(key)
        writer = rt.store.content.writer(f"diff-{key}")
        options = DiffOptions(
            compression=rt.env.compression, source_date_epoch=rt.env.source_date_epoch
        )
        try:
            blob: LayerBlob
            if source.kind == "upperdir":
                blob = diff_upperdir(source.upper, writer, options)
            else:
                blob = diff_trees(source.lower, source.upper, writer, options)
            if blob.diff_id == EMPTY_TAR:
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
