"""Node sessions: one `bale node build` per node over ssh, its progress relayed into the
one display, its results received, and the cancellation and failure of a set of them."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bale.builder.progress import Event, ProgressSink
from bale.cli.build_run import ssh_socket
from bale.cli.nodes import schedule, transport
from bale.cli.nodes.state import Node
from bale.errors import BaleError, FailedPrecondition, InvalidArgument, Unavailable
from bale.exporters.export_options import ImageFormat
from bale.exporters.outputs import OutputSpec
from bale.oci.platform import Platform

if TYPE_CHECKING:
    from bale.cli.build_cmd import BuildRequest

CANCEL_GRACE = 10.0  # seconds a node gets to stop after its stdin closes
_CHUNK = 1 << 20


class NodeFailed(BaleError):
    """A node's build failed; the message names the node and carries its error text."""


@dataclass
class _Run:
    node: Node
    platforms: tuple[Platform, ...]
    proc: subprocess.Popen[bytes]
    result: IO[bytes]
    text: list[str] = field(default_factory=list)  # stderr lines that were not progress
    names: dict[str, str] = field(default_factory=dict)  # vertex -> prefixed name
    label: str = ""  # the bake target this session builds, if any
    shown: str = ""  # the platform its step names lack (one of several the build makes)
    finished: threading.Event = field(default_factory=threading.Event)
    greeted: threading.Event = field(default_factory=threading.Event)
    hello: transport.Hello | None = None
    send_error: str = ""
    threads: list[threading.Thread] = field(default_factory=list)


def _agent(request: BuildRequest) -> str:
    """The ssh-agent socket `--ssh` names (forwarded to every node), or ""."""
    if not request.ssh:
        return ""
    for value in request.ssh:
        _, _, path = value.partition("=")
        for one in path.split(","):
            if one and not stat.S_ISSOCK(_mode(one)):
                raise InvalidArgument(
                    f"--ssh {value}: only agent sockets are forwarded to nodes, not key files",
                    hint="add the key to an ssh-agent and use --ssh default",
                )
    return ssh_socket(request.ssh)


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        raise InvalidArgument(f"--ssh: cannot use {path}: no such socket") from None


def _local_contexts(request: BuildRequest) -> dict[str, Path]:
    """The named build contexts that are directories here: sent to the nodes like the
    main context (image, oci-layout and URL contexts the nodes resolve themselves)."""
    out: dict[str, Path] = {}
    for name, value in request.build_contexts.items():
        if "://" in value:
            continue
        path = Path(value)
        if not path.is_dir():
            raise InvalidArgument(f"--build-context {name}={value}: not a directory")
        out[name] = path
    return out


def _node_argv(
    args: argparse.Namespace,
    request: BuildRequest,
    platforms: Sequence[Platform],
    oci_artifact: bool,
    names: Sequence[str],
    push: bool = False,
    format_attrs: dict[str, str] | None = None,
    agent: bool = False,
) -> list[str]:
    """`bale build` flags for the node: its platforms, the request's options, output OCI."""
    argv = ["--platform", ",".join(str(p) for p in platforms), "--progress", "rawjson"]
    for key, value in request.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in request.template_vars.items():
        argv += ["--template-var", f"{key}={value}"]
    for key, value in request.labels.items():
        argv += ["--label", f"{key}={value}"]
    for key, value in request.build_contexts.items():
        if "://" in value:  # local directories are sent; the node names them itself
            argv += ["--build-context", f"{key}={value}"]
    if request.target:
        argv += ["--target", request.target]
    if args.frontend:
        argv += ["--frontend", args.frontend]
    if request.network != "default":
        argv += ["--network", request.network]
    if request.no_cache:
        argv.append("--no-cache")
    for stage in request.no_cache_filter:
        argv += ["--no-cache-filter", stage]
    if request.pull:
        argv.append("--pull")
    for value in request.attest:
        argv += ["--attest", value]
    if request.provenance:
        argv += [f"--provenance={request.provenance}"]
    if request.sbom:
        argv += [f"--sbom={request.sbom}"]
    for value in args.cache_from:
        argv += ["--cache-from", value]
    for value in args.cache_to:
        argv += ["--cache-to", value]
    if request.jobs:
        argv += ["--jobs", str(request.jobs)]
    for host in getattr(args, "add_host", []) or []:
        argv += ["--add-host", host]
    if getattr(args, "shm_size", ""):
        argv += ["--shm-size", args.shm_size]
    for limit in getattr(args, "ulimit", []) or []:
        argv += ["--ulimit", limit]
    for entitlement in getattr(args, "allow", []) or []:
        argv += ["--allow", entitlement]
    if agent:  # the forwarded agent is the node session's SSH_AUTH_SOCK
        argv += ["--ssh", "default"]
    fields = [f"oci-artifact={str(oci_artifact).lower()}"]
    fields += [f"{k}={v}" for k, v in sorted((format_attrs or {}).items())]
    if push:  # the node pushes by digest; the coordinator tags the one index at the end
        fields = ["type=registry", "push-by-digest=true", *fields, "name=" + ",".join(names)]
        return [*argv, "-o", _csv(fields)]
    output = _csv(["type=oci", "dest=-", *fields])
    if names:
        output += "," + _csv(["name=" + ",".join(names)])
    return [*argv, "-o", output]


def _csv(fields: Sequence[str]) -> str:
    """One `-o` value, quoted as buildx's CSV reader wants (names hold commas)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


_FORMAT_KEYS = (
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "rewrite-timestamp",
)
_IMAGE_OUTPUTS = ("image", "registry", "oci", "docker")


def format_of(specs: Sequence[OutputSpec]) -> tuple[dict[str, str], ImageFormat]:
    """The image format every image output asks for (nodes build one), as `-o` attributes
    for the node and as parsed; outputs that disagree are refused before any work."""
    images = [s for s in specs if s.type in _IMAGE_OUTPUTS]
    formats = {s.options.format for s in images}
    if len(formats) > 1:
        raise InvalidArgument(
            "outputs with different image formats (compression, media types, annotations) "
            "cannot share one build on nodes",
            hint="give every output the same attributes, or build with --builder default",
        )
    if not images:
        return {}, ImageFormat()
    attrs = {
        k: v for k, v in images[0].attrs.items() if k in _FORMAT_KEYS or k.startswith("annotation")
    }
    return attrs, formats.pop()


def capabilities(
    nodes: Sequence[Node], hellos: dict[str, transport.Hello]
) -> list[schedule.Capability]:
    """Declared platforms are the node's native ones (as buildx reads --platform); what it
    detects beyond them it can still build, as the fallback tier."""
    caps = []
    for node in nodes:
        info = hellos[node.name]
        native = node.platforms or info.native
        other = tuple(p for p in (*info.native, *info.emulated) if p not in native)
        caps.append(schedule.Capability(node.name, tuple(native), other))
    return caps


def _when(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def relay(
    run_names: dict[str, str],
    node: str,
    status: dict[str, Any],
    sink: ProgressSink,
    label: str = "",
    platform: str = "",
) -> None:
    """One rawjson SolveStatus line from `node`, as events with the node (and the bake
    target, `label`) in each name. `platform`: the one the node builds of several the
    build makes, put into its step names as BuildKit names a multi-platform build's."""
    prefix = f"[{node}] " + (f"[{label}] " if label else "")
    if label:
        node = f"{node}/{label}"  # one target's vertices apart from another's on that node
    for v in status.get("vertexes", []) or []:
        digest = str(v.get("digest", ""))
        vertex = f"{node}/{digest}"
        name = str(v.get("name", ""))
        if platform and name.startswith("[") and not name.startswith(f"[{platform}"):
            name = f"[{platform} {name[1:]}"
        name = prefix + name
        run_names[vertex] = name
        started, completed = _when(v.get("started")), _when(v.get("completed"))
        if completed is None:
            sink.emit(Event("start", vertex, name, reason=str(v.get("reason", ""))))
        elif v.get("cached"):
            sink.emit(Event("cached", vertex, name))
        elif v.get("error"):
            sink.emit(Event("error", vertex, name, message=str(v["error"])))
        else:
            took = completed - started if started is not None else None
            sink.emit(Event("done", vertex, name, duration=took))
    for log in status.get("logs", []) or []:
        vertex = f"{node}/{log.get('vertex', '')}"
        try:
            data = base64.b64decode(str(log.get("data", ""))).decode(errors="replace")
        except ValueError:
            continue
        for line in data.rstrip("\n").split("\n"):
            sink.emit(
                Event(
                    "log",
                    vertex,
                    run_names.get(vertex, prefix),
                    message=line,
                    stream=int(log.get("stream", 1) or 1),
                )
            )
    for st in status.get("statuses", []) or []:
        vertex = f"{node}/{st.get('vertex', '')}"
        sink.emit(
            Event("status", vertex, run_names.get(vertex, prefix), message=str(st.get("name", "")))
        )
    for w in status.get("warnings", []) or []:
        try:
            short = base64.b64decode(str(w.get("short", ""))).decode(errors="replace")
        except ValueError:
            continue
        raw = str(w.get("vertex", ""))
        if raw:
            vertex = f"{node}/{raw}"
            sink.emit(Event("warning", vertex, run_names.get(vertex, prefix), message=short))
        else:
            sink.emit(Event("warning", "", "", message=prefix + short))


def _read_progress(run: _Run, sink: ProgressSink) -> None:
    assert run.proc.stderr is not None
    for raw in run.proc.stderr:
        line = raw.decode(errors="replace").rstrip("\n")
        try:
            status = json.loads(line)
        except ValueError:
            status = None
        if isinstance(status, dict) and isinstance(status.get("bale-node-hello"), dict):
            try:
                run.hello = transport.parse_hello(status["bale-node-hello"])
            except (ValueError, KeyError, TypeError, AssertionError):
                run.text.append(line)
            run.greeted.set()
        elif isinstance(status, dict) and (
            {"vertexes", "logs", "statuses", "warnings"} & status.keys()
        ):
            relay(run.names, run.node.name, status, sink, run.label, run.shown)
        elif line.strip():
            run.text.append(line)


def _read_result(run: _Run) -> None:
    assert run.proc.stdout is not None
    while chunk := run.proc.stdout.read(_CHUNK):
        run.result.write(chunk)
    run.result.flush()


def _send(run: _Run, header: dict[str, Any], packs: Sequence[tuple[IO[bytes], int]]) -> None:
    stdin = run.proc.stdin
    assert stdin is not None
    try:
        transport.send_header(stdin, header)
        for packed, size in packs:
            offset = 0
            fd = packed.fileno()
            while offset < size:
                chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
                stdin.write(chunk)
                offset += len(chunk)
        stdin.flush()
    except OSError as exc:
        run.send_error = str(exc)  # the node went away: its exit status says why


def _wait(run: _Run) -> None:
    run.proc.wait()
    for t in run.threads:
        t.join()
    run.finished.set()


def _cancel(runs: Sequence[_Run]) -> None:
    """Close every running node's stdin (the node stops its build), then kill what lingers."""
    for run in runs:
        if run.proc.poll() is None and run.proc.stdin is not None:
            try:
                run.proc.stdin.close()
            except OSError:
                pass
    deadline = time.monotonic() + CANCEL_GRACE
    for run in runs:
        try:
            run.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()


def _failure(run: _Run) -> BaleError:
    code = run.proc.returncode
    if code == transport.SSH_EXIT or code < 0 or not run.text:
        return transport.failure(
            run.node,
            code,
            "\n".join(run.text),
            "building "
            + ", ".join(str(p) for p in run.platforms)
            + (f" of target {run.label!r}" if run.label else ""),
        )
    text = "\n".join(run.text)
    if "ERROR:" in text:
        text = text[text.index("ERROR:") + len("ERROR:") :].lstrip()
    doing = f" building target {run.label!r}" if run.label else ""
    return NodeFailed(f"ERROR: {transport.describe(run.node)} failed{doing}: {text}")


def local_root(node: Node, args: argparse.Namespace) -> Node:
    """A `local` node without `root=` builds in this bale's root: one store, one cache."""
    if node.endpoint.kind != "local" or "root" in node.opts:
        return node
    from bale.cli.nodes.select import state_root

    return replace(node, opts={**node.opts, "root": str(state_root(args))})


def _open(
    node: Node,
    digest: str,
    sink: ProgressSink,
    agent: str = "",
    named: dict[str, str] | None = None,
    label: str = "",
) -> _Run:
    """One session to the node, asked whether it holds context `digest`."""
    proc = transport.start_build(node, agent)
    result = tempfile.TemporaryFile(prefix=f"bale-node-{node.name}-")  # noqa: SIM115
    run = _Run(node, (), proc, result, label=label)
    run.threads = [
        threading.Thread(target=_read_progress, args=(run, sink), daemon=True),
        threading.Thread(target=_read_result, args=(run,), daemon=True),
    ]
    for t in run.threads:
        t.start()
    threading.Thread(target=_wait, args=(run,), daemon=True).start()
    assert proc.stdin is not None
    try:
        transport.send_header(proc.stdin, {"context": digest, "named": named or {}})
        proc.stdin.flush()
    except OSError:
        pass  # the node is gone already: greeting it says why
    return run


def _greet(
    runs: Sequence[_Run],
) -> tuple[dict[str, transport.Hello], dict[str, BaleError]]:
    """Every node's hello, and the nodes that could not be reached (by name, with the
    error). A node that answers but is not this bale's version is raised at once."""
    deadline = time.monotonic() + transport.HELLO_TIMEOUT
    out: dict[str, transport.Hello] = {}
    down: dict[str, BaleError] = {}
    for run in runs:
        while not run.greeted.is_set() and not run.finished.is_set():
            if time.monotonic() > deadline:
                break
            run.greeted.wait(0.05)
        if run.hello is not None:
            transport.require_version(run.node, run.hello)
            out[run.node.name] = run.hello
        elif not run.finished.is_set():
            down[run.node.name] = Unavailable(
                f"{transport.describe(run.node)} did not answer within "
                f"{transport.HELLO_TIMEOUT:.0f}s"
            )
        elif run.proc.returncode == transport.SSH_EXIT:
            down[run.node.name] = transport.failure(
                run.node, run.proc.returncode, "\n".join(run.text), "connecting"
            )
        elif run.proc.returncode != 0:
            raise transport.failure(
                run.node, run.proc.returncode, "\n".join(run.text), "connecting"
            )
        else:
            # Not this protocol: an older or other bale; its `node hello` says which.
            info = transport.hello(run.node)
            transport.require_version(run.node, info)
            raise Unavailable(f"{transport.describe(run.node)} did not start a node build")
    return out, down


def plan_without(
    wanted: Sequence[Platform],
    nodes: Sequence[Node],
    hellos: dict[str, transport.Hello],
    down: dict[str, BaleError],
    strict: bool,
    busy: dict[str, int] | None = None,
) -> schedule.Plan:
    """The plan over the nodes that answered. An unreachable node is only skipped when the
    others serve natively every platform it declared; otherwise its error is raised."""
    up = [n for n in nodes if n.name in hellos]
    if down and not up:
        raise next(iter(down.values()))
    try:
        plan = schedule.plan(wanted, capabilities(up, hellos), strict=strict, busy=busy)
    except FailedPrecondition:
        if down:
            raise next(iter(down.values())) from None  # what the missing node would serve
        raise
    emulated = {p for a in plan.assignments for p in a.emulated}
    warnings = list(plan.warnings)
    for node in nodes:
        if node.name not in down:
            continue
        if any(p in emulated for p in node.platforms):
            raise down[node.name]
        warnings.insert(0, f"WARNING: {down[node.name].message}; building without it")
    return schedule.Plan(plan.assignments, tuple(warnings))


def _dispatch(run: _Run, header: dict[str, Any], packs: Sequence[tuple[IO[bytes], int]]) -> None:
    threading.Thread(target=_send, args=(run, header, packs), daemon=True).start()


def _release(run: _Run) -> None:
    """A node the plan gave nothing: EOF instead of a header ends its session."""
    if run.proc.stdin is not None:
        try:
            run.proc.stdin.close()
        except OSError:
            pass


def _lost(run: _Run) -> bool:
    """Whether a finished node session broke (connection, kill) rather than failed a step."""
    code = run.proc.returncode
    return code == transport.SSH_EXIT or (code is not None and code < 0)


class Cancelled(BaleError):
    """The caller stopped this build (another build of the same run failed)."""


def _run_all(
    runs: list[_Run],
    retry: Callable[[_Run], _Run | None],
    stop: threading.Event | None = None,
) -> list[_Run]:
    """Wait for every node. A node lost mid-build is retried once on another node that
    serves its platforms natively (`retry`); any other failure, or `stop` being set,
    cancels the rest and is raised. Returns the runs that produced the result."""
    active = list(runs)
    retried: set[str] = set()
    try:
        while True:
            if stop is not None and stop.is_set():
                _cancel(active)
                raise Cancelled("cancelled")
            failed = [
                r
                for r in active
                if r.finished.is_set() and (r.proc.returncode != 0 or r.result.tell() == 0)
            ]
            for run in failed:
                again = None
                if _lost(run) and run.node.name not in retried:
                    retried.add(run.node.name)
                    again = retry(run)
                if again is None:
                    _cancel(active)
                    raise _failure(run)
                active[active.index(run)] = again
            if all(r.finished.is_set() for r in active):
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        _cancel(active)
        raise
    for run in active:
        if run.proc.stdin is not None:
            try:
                run.proc.stdin.close()
            except OSError:
                pass
    return active
