"""The record a build leaves in the store (`bale history`): what was asked, every step with
its times, cache use, miss reason, emulation and exit code, its whole log, the warnings, the
results and, for a failed build, the error with its Dockerfile lines.

    mask = masker(secret_values(options.secrets, options.build_args))
    recorder = Recorder(store, sink, lease, mask=mask)    a ProgressSink passing events on
    run_build(store, options, recorder, ...)
    record_id = recorder.finish(request, result=..., error=...)   success or failure

Records never hold a secret: the request keeps build-arg and label names only (what
provenance `mode=min` would show is even less) and secret ids, never values; secret values
and the values of build-args whose names look secret are masked in logs, step names,
warnings and the error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bale.builder import progress as pg
from bale.builder.result import BuildResult
from bale.errors import BaleError, SourceRange
from bale.store.history import History, HistoryEntry, LogBlob, LogWriter, new_id
from bale.store.local import Lease, Store

RECORD_VERSION = "bale.history.v1"
_MASK = "****"
_MIN_MASKED = 4  # shorter values would mask ordinary words everywhere


@dataclass(frozen=True)
class RecordRequest:
    """The build request as a record keeps it: names, never values of arguments or secrets."""

    context: str
    dockerfile: str
    platforms: tuple[str, ...]
    target: str = ""
    build_args: tuple[str, ...] = ()  # names only
    labels: tuple[str, ...] = ()  # names only
    secrets: tuple[str, ...] = ()  # ids only
    ssh: bool = False
    tags: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # exporter types
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()  # cache backend types
    cache_to: tuple[str, ...] = ()
    network: str = "default"
    command: str = "build"


def masker(values: Iterable[str]) -> Masker:
    return Masker(tuple(sorted({v for v in values if len(v) >= _MIN_MASKED}, key=len)[::-1]))


@dataclass(frozen=True)
class Masker:
    """Replaces known secret values (longest first) with ****."""

    values: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, _MASK)
        return text


def secret_values(secrets: Mapping[str, bytes], build_args: Mapping[str, str]) -> list[str]:
    """What must never reach a record: secret values (also line by line, as a multi-line
    secret is logged a line at a time) and values of build-args named like secrets."""
    from bale.frontends.dockerfile.checks import _is_secret

    out: list[str] = []
    for data in secrets.values():
        text = data.decode("utf-8", "replace")
        out.append(text.strip())
        out.extend(line.strip() for line in text.splitlines())
    out.extend(value for name, value in build_args.items() if _is_secret(name))
    return [v for v in out if v]


@dataclass
class _Step:
    n: int
    vertex: str
    name: str
    platform: str
    status: str = "pending"  # pending, running, cached, executed, error, canceled, resolved
    started: float | None = None
    completed: float | None = None
    reason: str = ""
    emulation: str = ""
    exit_code: int | None = None
    error: str = ""
    inputs: tuple[str, ...] = ()
    log: LogWriter | None = None
    blob: LogBlob | None = None
    lines: int = 0
    warnings: list[str] = field(default_factory=list)


class Recorder:
    """A ProgressSink that passes every event on and keeps what the record needs; each
    step's output goes straight into a compressed blob, so a long log costs no memory."""

    def __init__(
        self,
        store: Store,
        sink: pg.ProgressSink,
        lease: Lease,
        *,
        mask: Masker | None = None,
        record_id: str | None = None,
    ) -> None:
        self.store = store
        self.id = record_id or new_id()
        self._sink = sink
        self._lease = lease
        self._mask = mask or Masker()
        self._steps: dict[str, _Step] = {}
        self._warnings: list[str] = []
        self._lock = threading.Lock()
        self._broken = ""
        self._failed = False
        self._done = False
        self.started = time.time()

    def emit(self, event: pg.Event) -> None:
        try:
            with self._lock:
                # Events of steps still stopping after the record was written are not kept.
                if not self._broken and not self._done:
                    self._keep(event)
        except (OSError, BaleError) as exc:
            # Keeping the record must never fail the build: the record says what was lost.
            self._broken = f"the record stopped being kept: {exc}"
        finally:
            self._sink.emit(event)

    def _keep(self, event: pg.Event) -> None:
        if not event.vertex:
            if event.kind == "warning" and event.message:
                self._warnings.append(self._mask(event.message))
            return
        step = self._steps.get(event.vertex)
        if step is None:
            step = _Step(len(self._steps) + 1, event.vertex, self._mask(event.name), event.platform)
            self._steps[event.vertex] = step
        if event.inputs:
            step.inputs = event.inputs
        kind = event.kind
        if kind == "start":
            step.status, step.started = "running", event.time
            step.reason, step.emulation = event.reason, event.emulation
        elif kind == "cached":
            step.status, step.started, step.completed = "cached", event.time, event.time
        elif kind == "done":
            if step.status == "running":
                step.status, step.completed = "executed", event.time
            else:  # a base image resolved: no process, no cache lookup
                step.status, step.started, step.completed = "resolved", event.time, event.time
        elif kind == "error":
            # A step's process stopped by a signal once another step has failed was stopped
            # with the build: canceled, as BuildKit shows it, not a failure of its own.
            code = event.exit_code
            killed = code is not None and (code < 0 or code > 128)
            cancelled = killed and self._failed
            step.status = "canceled" if cancelled else "error"
            self._failed = self._failed or not cancelled
            step.completed = event.time
            step.error = self._mask(event.message)
            step.exit_code = code
        elif kind == "log":
            if step.log is None:
                step.log = LogWriter(self.store, self._lease)
            step.log.write((self._mask(event.message) + "\n").encode())
            step.lines += 1
        elif kind == "warning":
            text = self._mask(event.message)
            step.warnings.append(text)
            self._warnings.append(text)

    def finish(
        self,
        request: RecordRequest,
        *,
        result: BuildResult | None = None,
        results: Mapping[str, BuildResult] | None = None,
        error: BaseException | None = None,
        image: Mapping[str, Any] | None = None,
        vertices: Collection[str] | None = None,
    ) -> str:
        """Write the record (success or failure) and return its id; `results` are a bake
        run's, by target. `vertices`: only these steps are this build's (one of several
        builds solved together)."""
        if result is not None:
            results = {"": result}
        completed = time.time()
        with self._lock:
            self._done = True
            steps = []
            for step in self._steps.values():
                if vertices is None or step.vertex in vertices:
                    steps.append(step)
                elif step.log is not None:
                    step.log.abort()
                    step.log = None
            for step in steps:
                if step.log is not None:
                    step.blob = step.log.finish()
                    step.log = None
                if step.status == "running":
                    step.status, step.completed = "canceled", completed
                elif isinstance(error, KeyboardInterrupt) and step.status == "error":
                    code = step.exit_code
                    if code is not None and (code < 0 or code > 128):
                        step.status = "canceled"  # stopped by the interrupt
            warnings = list(self._warnings)
            if self._broken:
                warnings.append(f"WARNING: {self._broken}")
        status = "completed"
        if error is not None:
            status = "canceled" if isinstance(error, KeyboardInterrupt) else "error"
        record = {
            "version": RECORD_VERSION,
            "id": self.id,
            "name": record_name(request),
            "status": status,
            "created": self.started,
            "completed": completed,
            "request": asdict(request),
            "steps": [_step_json(s) for s in steps],
            "warnings": warnings,
            "results": _results(results or {}, steps, image),
            "error": _error_json(error, self._mask) if error is not None else None,
        }
        blobs = [s.blob.digest for s in steps if s.blob is not None]
        entry = HistoryEntry(
            self.id, self.started, completed, status, str(record["name"]), json.dumps(record)
        )
        History(self.store).put(entry, blobs)
        return self.id

    def abort(self) -> None:
        """Drop the logs of a record that will not be written."""
        with self._lock:
            self._done = True
            for step in self._steps.values():
                if step.log is not None:
                    step.log.abort()
                    step.log = None


def record_name(request: RecordRequest) -> str:
    """buildx's NAME column: the context directory's name, with the target when one was set."""
    base = request.context.split(", ")[0].rstrip("/").rsplit("/", 1)[-1] or request.context
    if request.command == "bake":
        return f"{base} (bake {request.target})"
    return f"{base} ({request.target})" if request.target else base


def _step_json(s: _Step) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n": s.n,
        "vertex": s.vertex,
        "name": s.name,
        "platform": s.platform,
        "status": s.status,
        "started": s.started,
        "completed": s.completed,
        "inputs": list(s.inputs),
    }
    if s.reason:
        out["reason"] = s.reason
    if s.emulation:
        out["emulation"] = s.emulation
    if s.exit_code is not None:
        out["exit_code"] = s.exit_code
    if s.error:
        out["error"] = s.error
    if s.warnings:
        out["warnings"] = s.warnings
    if s.blob is not None:
        out["log"] = {
            "digest": str(s.blob.digest),
            "size": s.blob.size,
            "raw_size": s.blob.raw_size,
            "lines": s.lines,
        }
    return out


def _results(
    results: Mapping[str, BuildResult], steps: Sequence[_Step], image: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Layers per platform (and per target, for bake: `results` is keyed by target name,
    "" for a plain build), each credited to the step that made it."""
    out: dict[str, Any] = dict(image or {})
    if not results:
        return out
    layers_by_vertex = {
        r.vertex: r.layer for res in results.values() for r in res.steps if r.layer is not None
    }
    by_vertex = {s.vertex: s for s in steps}
    # A layer's bytes may be the same on two platforms: credit the step of the platform.
    made_by: dict[tuple[str, str], int] = {}
    for vertex, layer in layers_by_vertex.items():
        step = by_vertex.get(vertex)
        if step is not None:
            made_by[(str(layer.descriptor.digest), step.platform)] = step.n
    platforms = []
    for target, result in results.items():
        for p in result.platforms:
            layers = []
            for layer in p.layers:
                digest = str(layer.descriptor.digest)
                item: dict[str, Any] = {"digest": digest, "size": layer.descriptor.size}
                n = made_by.get((digest, str(p.platform)))
                if n is not None:
                    item["step"] = n
                layers.append(item)
            entry = {"platform": str(p.platform), "layers": layers}
            if target:
                entry["target"] = target
            platforms.append(entry)
    out["platforms"] = platforms
    for s in steps:
        made = layers_by_vertex.get(s.vertex)
        if made is not None:
            out.setdefault("step_layers", {})[str(s.n)] = made.descriptor.size
    return out


def _error_json(error: BaseException, mask: Masker) -> dict[str, Any]:
    if isinstance(error, KeyboardInterrupt):
        return {"message": "interrupted"}
    message = str(error) if isinstance(error, BaleError) else f"{type(error).__name__}: {error}"
    out: dict[str, Any] = {"message": mask(message)}
    hint = getattr(error, "hint", "")
    if hint:
        out["hint"] = mask(hint)
    vertex = getattr(error, "vertex", "")
    if vertex:
        out["vertex"] = vertex
    source = getattr(error, "source", None)
    lines = getattr(error, "lines", ())
    if isinstance(source, SourceRange):
        out["source"] = {"filename": source.filename, "start": source.start, "end": source.end}
        first, last = max(1, source.start - 2), min(len(lines), source.end + 2)
        out["lines"] = [[n, mask(lines[n - 1])] for n in range(first, last + 1)]
    return out
