"""`bale bake` on a builder of remote nodes: each target's platforms on nodes.

1. Every node is asked for its platforms once; each target's platforms are then planned
   over them as `bale build` plans one build's (native first, else emulated with a
   warning), the load counted across targets, so two targets for one platform served by
   two nodes go one to each.
2. The targets' remote builds run at once where they use different nodes; a node builds
   one target at a time. A failure cancels every other build and is raised naming its
   target and node.
3. Only when every target has succeeded on every node are the results assembled and
   exported: pushes and files first, store tags last (as a local bake), so a failure
   leaves no tag of any target.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bale.builder.progress import Event
from bale.cli.common import open_store
from bale.cli.progress_render import TtyRenderer, renderer
from bale.errors import BaleError, InvalidArgument

if TYPE_CHECKING:
    from bale.builder.progress import ProgressSink
    from bale.cli.bake_build import _Target
    from bale.cli.nodes import transport
    from bale.cli.nodes.coordinator import Job
    from bale.cli.nodes.schedule import Plan as NodePlan
    from bale.cli.nodes.state import Builder, Node
    from bale.frontends.bake.plan import Plan, PlanTarget
    from bale.store.local import Lease, Store


def _node_args(args: argparse.Namespace, t: PlanTarget) -> argparse.Namespace:
    """The `bale build` flags the coordinator reads, from the target's attributes."""
    from bale.builder.entitlements import KNOWN
    from bale.cli.bake_build import _csv

    out = argparse.Namespace(**vars(args))
    out.frontend = None
    out.cache_from = [_csv(c) for c in t.cache_from]
    out.cache_to = [_csv(c) for c in t.cache_to]
    out.add_host = [f"{k}={v}" for k, v in t.extra_hosts.items()]
    out.shm_size = t.shm_size or ""
    out.ulimit = list(t.ulimits)
    # Only the entitlements `bale build --allow` knows: bake's fs ones are its own.
    out.allow = [a for a in getattr(args, "allow", []) or [] if a in KNOWN]
    return out


def run(args: argparse.Namespace, plan: Plan, targets: Sequence[_Target], builder: Builder) -> int:
    from bale.cli.nodes import coordinator, sessions

    for t in targets:
        if t.links:
            raise InvalidArgument(
                f"target {t.name}: contexts from other targets (target:) are not supported "
                f"on builder {builder.name!r} of remote nodes",
                hint="bake the other target first and name its image "
                "(docker-image://...), or use --builder default",
            )
    jobs: dict[str, Job] = {}
    for t in targets:
        try:
            jobs[t.name] = coordinator.prepare(
                _node_args(args, plan.targets[t.name]), t.request, t.files, t.name, t.specs
            )
        except BaleError as exc:
            raise exc.with_context(f"target {t.name}") from None
    progress = "quiet" if args.progress == "none" else args.progress
    sink = renderer(progress)
    nodes = [sessions.local_root(n, args) for n in builder.nodes]
    metadata: dict[str, Any] = {}
    try:
        hellos, down = coordinator.probe(nodes)
        plans = _plan(targets, nodes, hellos, down, sink)
        # The store is opened (and reclaimed) before any node starts: a `local` node may
        # build in this same root.
        with open_store(args) as store, store.lease(rollback=False) as record_lease:
            recorders = {
                t.name: coordinator.recorder_for(store, sink, record_lease, t.request)
                for t in targets
            }
            images: dict[str, Any] = {}
            try:
                _build_all(jobs, plans, nodes, hellos, recorders)
                with store.lease() as lease:
                    metadata = _export(plan, targets, jobs, store, lease, images)
            except BaseException as exc:
                for t in targets:
                    coordinator.record(recorders[t.name], jobs[t.name], None, exc, "bake")
                raise
            for t in targets:
                coordinator.record(recorders[t.name], jobs[t.name], images[t.name], None, "bake")
    finally:
        for job in jobs.values():
            coordinator.close(job)
        if isinstance(sink, TtyRenderer):
            sink.close()
    if args.metadata_file:
        Path(args.metadata_file).write_text(json.dumps(metadata, indent=2) + "\n")
    sys.stdout.flush()
    return 0


def _plan(
    targets: Sequence[_Target],
    nodes: Sequence[Node],
    hellos: dict[str, transport.Hello],
    down: dict[str, BaleError],
    sink: ProgressSink,
) -> dict[str, NodePlan]:
    """Each target's platforms over the nodes, the load counted across targets."""
    from bale.cli.nodes import schedule, sessions

    plans: dict[str, NodePlan] = {}
    busy: dict[str, int] = {}
    for t in targets:
        try:
            p = sessions.plan_without(
                t.request.platforms, nodes, hellos, down, strict=False, busy=busy
            )
        except BaleError as exc:
            raise exc.with_context(f"target {t.name}") from None
        for warning in p.warnings:
            sink.emit(Event("warning", "", "", message=f"{warning} (target {t.name})"))
        for a in p.assignments:
            busy[a.node] = busy.get(a.node, 0) + len(a.platforms)
        plans[t.name] = schedule.Plan(p.assignments)
    return plans


def _export(
    plan: Plan,
    targets: Sequence[_Target],
    jobs: dict[str, Job],
    store: Store,
    lease: Lease,
    images: dict[str, Any],
) -> dict[str, Any]:
    """Every target's image assembled, then pushes and files for all, store tags last."""
    from bale.cli.nodes import coordinator

    for t in targets:
        try:
            images[t.name] = coordinator.assemble(jobs[t.name], store, lease)
        except BaleError as exc:
            raise exc.with_context(f"target {t.name}") from None
    responses: dict[str, list[Any]] = {t.name: [] for t in targets}
    for tags in (False, True):
        for t in targets:
            try:
                done = coordinator.publish(jobs[t.name], store, images[t.name], tags=tags)
                for response in done:
                    if response.finalize is not None:
                        response.finalize()
            except BaleError as exc:
                raise exc.with_context(f"target {t.name}") from None
            responses[t.name] += done
    return _metadata(plan, targets, images, responses)


def _build_all(
    jobs: dict[str, Job],
    plans: dict[str, NodePlan],
    nodes: Sequence[Node],
    hellos: dict[str, transport.Hello],
    sinks: Mapping[str, ProgressSink],
) -> None:
    """Every target's remote build, one thread each; a node is held by one target at a
    time (taken in name order, so two targets never wait on each other). The first
    failure stops the rest and is raised with its target."""
    from bale.cli.nodes import coordinator, sessions

    locks = {n.name: threading.Lock() for n in nodes}
    stop = threading.Event()
    errors: list[tuple[str, BaseException]] = []

    def work(name: str) -> None:
        held = sorted({a.node for a in plans[name].assignments})
        for node in held:
            locks[node].acquire()
        try:
            if not stop.is_set():
                coordinator.build_remote(
                    jobs[name], nodes, sinks[name], plan=plans[name], known=hellos, stop=stop
                )
        except sessions.Cancelled:
            pass
        except BaseException as exc:  # raised again by the main thread
            errors.append((name, exc))
            stop.set()
        finally:
            for node in held:
                locks[node].release()

    threads = [threading.Thread(target=work, args=(name,), daemon=True) for name in jobs]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
        raise
    if errors:
        name, exc = errors[0]
        if isinstance(exc, BaleError):
            if f"target {name!r}" in exc.message:  # a node's failure names it already
                raise exc
            raise exc.with_context(f"target {name}") from None
        raise exc


def _metadata(
    plan: Plan,
    targets: Sequence[_Target],
    images: dict[str, Any],
    responses: dict[str, list[Any]],
) -> dict[str, Any]:
    from bale.cli.bake_build import _IMAGE_TYPES
    from bale.cli.build_run import image_metadata

    out: dict[str, Any] = {}
    for t in targets:
        if plan.targets[t.name].linked:
            continue
        meta: dict[str, Any] = {}
        if any(s.type in _IMAGE_TYPES for s in t.specs):
            meta = image_metadata(images[t.name], t.request.tags)
        for response in responses[t.name]:
            meta.update(response.metadata)
        out[t.name] = meta
    return out
