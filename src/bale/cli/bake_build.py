"""`bale bake` building: each target of the plan becomes the request `bale build` would make
of the same flags, and every target and platform is solved in one graph.

Results are atomic across targets (docker/buildx#1089): nothing is exported until every
target has built; pushes and files come before store tags, so a failed push leaves no new
tag either. A failure names its target, and a step's failure its Dockerfile line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bale.builder.build import TargetBuild, run_builds
from bale.builder.entitlements import KNOWN, parse_allow
from bale.builder.history import Recorder, masker, secret_values
from bale.builder.progress import ProgressSink
from bale.builder.remotecache.spec import parse_cache_spec
from bale.cli.attest_flags import attest_options, warn_attestations
from bale.cli.build_cmd import BuildRequest, parse_platforms, run_call
from bale.cli.build_run import (
    build_options,
    check_annotations,
    check_formats,
    image_metadata,
    image_summary,
    images_for,
    output_specs,
    planned_exporters,
    record_request,
)
from bale.cli.common import open_store, store_root
from bale.cli.output_checks import check_destinations
from bale.cli.progress_render import TtyRenderer, renderer
from bale.cli.run_flags import RunFlags, parse_add_host, parse_size, parse_ulimit
from bale.errors import BaleError, InvalidArgument
from bale.exporters.base import Exporter, ExportResponse
from bale.exporters.export_options import ImageFormat
from bale.exporters.image import ImageOutcome
from bale.exporters.outputs import OutputSpec
from bale.exporters.store_image import StoreImageExporter
from bale.frontends.dockerfile.parser import ParsedDockerfile
from bale.frontends.load import DockerfileSource, dockerfiles_for, read_dockerfile
from bale.oci.platform import Platform
from bale.oci.reference import Reference

if TYPE_CHECKING:
    from bale.builder.result import BuildResult
    from bale.exporters.attest import AttestOptions
    from bale.frontends.bake.plan import Plan, PlanTarget
    from bale.store.local import Lease, Store

CWD = "cwd://"
# Outputs whose result is an image (what the metadata file's containerimage.* describe).
_IMAGE_TYPES = ("image", "registry", "oci", "docker")


@dataclass(frozen=True)
class _Target:
    """One target as `bale build` would see it, and the targets its contexts name."""

    name: str
    request: BuildRequest
    files: dict[Platform, ParsedDockerfile]
    links: dict[str, str]
    specs: list[OutputSpec]


def _csv(fields: dict[str, Any], first: str = "type") -> str:
    """A buildx CSV value (`type=local,dest=out`) from its parsed form."""
    items = sorted(fields.items(), key=lambda kv: (kv[0] != first, kv[0]))
    out = []
    for key, value in items:
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(value)
        text = f"{key}={value}"
        out.append(f'"{text}"' if "," in text or '"' in text else text)
    return ",".join(out)


def _ssh(entry: dict[str, Any]) -> str:
    paths = entry.get("paths") or []
    return f"{entry['id']}={','.join(paths)}" if paths else str(entry.get("id", "default"))


def _local(path: str) -> str:
    return path.removeprefix(CWD)


def _dockerfile(t: PlanTarget) -> DockerfileSource:
    if t.dockerfile_inline is not None:
        return DockerfileSource(t.dockerfile_inline, "Dockerfile", None, False)
    path = t.dockerfile
    if path.startswith(CWD):
        path = _local(path)
    elif not os.path.isabs(path):
        path = os.path.join(_local(t.context), path)
    return read_dockerfile(Path(_local(t.context)), path)


def request_for(t: PlanTarget, progress: str, allow: tuple[str, ...] = ()) -> BuildRequest:
    """The `bale build` request the target's attributes stand for."""
    for tag in t.tags:
        try:
            Reference.parse(tag)
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid tag {tag!r}: {exc.message}", hint=exc.hint) from None
    if "://" in t.context and not t.context.startswith(CWD):
        raise InvalidArgument(
            f"context {t.context!r}: only local directories can be built",
            hint="clone the repository and use its directory as context",
        )
    return BuildRequest(
        context=Path(_local(t.context)),
        dockerfile=_dockerfile(t),
        platforms=parse_platforms(list(t.platforms)),
        tags=t.tags,
        build_args=dict(t.args),
        template_vars={},
        target=t.target,
        call=t.call or "build",
        labels=dict(t.labels),
        network=t.network or "default",
        secrets=tuple(_csv(s, "id") for s in t.secrets),
        ssh=tuple(_ssh(s) for s in t.ssh),
        outputs=tuple(_csv(o) for o in t.outputs if o.get("type") != "cacheonly"),
        build_contexts={k: _local(v) for k, v in t.contexts.items() if not v.startswith("target:")},
        load=False,
        push=False,
        no_cache=bool(t.no_cache),
        no_cache_filter=t.no_cache_filter,
        pull=bool(t.pull),
        iidfile=None,
        metadata_file=None,
        progress=progress,
        quiet=False,
        jobs=None,
        attest=tuple(_csv(a) for a in t.attest),
        cache_from=tuple(parse_cache_spec(_csv(c), "cache-from") for c in t.cache_from),
        cache_to=tuple(parse_cache_spec(_csv(c), "cache-to") for c in t.cache_to),
        annotations=t.annotations,
        run=RunFlags(
            extra_hosts=tuple(parse_add_host(f"{k}={v}") for k, v in t.extra_hosts.items()),
            shm_size=parse_size(t.shm_size) if t.shm_size else 0,
            ulimits=tuple(parse_ulimit(u) for u in t.ulimits),
            allow=_entitlements(t, allow),
        ),
    )


def _entitlements(t: PlanTarget, allow: tuple[str, ...]) -> frozenset[str]:
    """What the target's RUN steps may do: what `--allow` grants. A target that asks for
    more fails as buildx's does; bake's own fs entitlements are not checked here."""
    granted = parse_allow(tuple(a for a in allow if a in KNOWN))
    wanted = [e for e in t.entitlements if e in KNOWN and e not in granted]
    if wanted:
        raise InvalidArgument(
            "additional privileges requested: pass "
            + " ".join(f'"--allow={e}"' for e in wanted)
            + " to grant requested privileges"
        )
    return granted


def _target(t: PlanTarget, progress: str, allow: tuple[str, ...]) -> _Target:
    try:
        request = request_for(t, progress, allow)
        files = dockerfiles_for(
            request.dockerfile, request.platforms, build_args=request.build_args
        )
        cache_only = bool(t.outputs) and all(o.get("type") == "cacheonly" for o in t.outputs)
        specs = [] if cache_only else output_specs(request)
        if len(files) > 1 and any(s.type == "docker" and s.dest for s in specs):
            raise InvalidArgument(
                "docker exporter does not currently support exporting manifest lists",
                hint="build one platform, or use type=oci",
            )
    except BaleError as exc:
        raise exc.with_context(f"target {t.name}") from None
    return _Target(t.name, request, files, t.linked_targets(), specs)


def run(args: argparse.Namespace, plan: Plan) -> int:
    progress = "quiet" if args.progress == "none" else args.progress
    allow = tuple(args.allow)
    targets = [_target(plan.targets[name], progress, allow) for name in sorted(plan.targets)]
    calls = [t for t in targets if t.request.call != "build"]
    if calls:
        return _calls(plan, calls)
    from bale.cli.nodes.select import remote_builder

    builder = remote_builder(args, [p for t in targets for p in t.request.platforms])
    if builder is not None:
        from bale.cli import bake_nodes

        return bake_nodes.run(args, plan, targets, builder)
    planned: dict[str, list[tuple[ImageFormat, Exporter]]] = {}
    attest: dict[str, AttestOptions] = {}
    for t in targets:
        with _named(t.name):
            planned[t.name] = planned_exporters(args, t.request, t.specs)
            attest[t.name] = attest_options(t.request, t.specs)
            check_formats(t.request, planned[t.name])
            check_destinations(t.specs, None, None, store_root(args))
    sink = renderer(progress)
    quiet = progress == "quiet"
    for t in targets:
        warn_attestations(sink, attest[t.name], quiet)
    builds = [TargetBuild(t.name, build_options(t.request, t.files), t.links) for t in targets]
    metadata: dict[str, Any] = {}
    try:
        with open_store(args) as store, store.lease(rollback=False) as record_lease:
            recorders = _recorders(store, sink, record_lease, targets, builds)
            results: dict[str, BuildResult] = {}
            images: dict[str, dict[ImageFormat, ImageOutcome]] = {}
            try:
                with store.lease() as lease:
                    _build_and_export(
                        store,
                        lease,
                        recorders[0][1] if recorders else sink,
                        plan,
                        targets,
                        builds,
                        planned,
                        attest,
                        results,
                        images,
                        metadata,
                    )
            except BaseException as exc:
                for t, recorder in recorders:
                    _record(recorder, t, results.get(t.name), None, planned[t.name], exc)
                raise
            for t, recorder in recorders:
                _record(recorder, t, results.get(t.name), images.get(t.name), planned[t.name])
    finally:
        if isinstance(sink, TtyRenderer):
            sink.close()
    if args.metadata_file:
        Path(args.metadata_file).write_text(json.dumps(metadata, indent=2) + "\n")
    sys.stdout.flush()
    return 0


def _build_and_export(
    store: Store,
    lease: Lease,
    sink: ProgressSink,
    plan: Plan,
    targets: list[_Target],
    builds: list[TargetBuild],
    planned: dict[str, list[tuple[ImageFormat, Exporter]]],
    attest: dict[str, AttestOptions],
    results: dict[str, BuildResult],
    images: dict[str, dict[ImageFormat, ImageOutcome]],
    metadata: dict[str, Any],
) -> None:
    """Build every target, then export them all (see the module's docstring)."""
    for t in targets:
        with _named(t.name):
            check_annotations(store, planned[t.name], t.files)
    results.update(run_builds(store, builds, sink, lease))
    for t in targets:
        if planned[t.name]:
            inline = any(spec.kind == "inline" for spec in t.request.cache_to)
            with _named(t.name):
                images[t.name] = images_for(
                    store, lease, results[t.name], planned[t.name], attest[t.name], inline
                )
    # Files and pushes first, store tags last.
    ordered = sorted(
        ((t, fmt, e) for t in targets for fmt, e in planned[t.name]),
        key=lambda item: isinstance(item[2], StoreImageExporter),
    )
    responses: dict[str, list[ExportResponse]] = {t.name: [] for t in targets}
    finalized = False
    for t, fmt, exporter in ordered:
        if isinstance(exporter, StoreImageExporter) and not finalized:
            _finalize(responses)
            finalized = True
        with _named(t.name):
            responses[t.name].append(exporter.export(store, images[t.name][fmt]))
    if not finalized:
        _finalize(responses)
    for t in targets:
        if t.name in images and not plan.targets[t.name].linked:
            metadata[t.name] = _metadata(t, images[t.name], planned[t.name], responses)


def _recorders(
    store: Store,
    sink: ProgressSink,
    lease: Lease,
    targets: list[_Target],
    builds: list[TargetBuild],
) -> list[tuple[_Target, Recorder]]:
    """One history record per target, as buildx keeps them: the recorders are chained, each
    passing every event on, the first one given to the build."""
    mask = masker(
        [v for b in builds for v in secret_values(b.options.secrets, b.options.build_args)]
    )
    out: list[tuple[_Target, Recorder]] = []
    inner = sink
    for t in reversed(targets):
        recorder = Recorder(store, inner, lease, mask=mask)
        out.insert(0, (t, recorder))
        inner = recorder
    return out


def _record(
    recorder: Recorder,
    t: _Target,
    result: BuildResult | None,
    images: dict[ImageFormat, ImageOutcome] | None,
    planned: list[tuple[ImageFormat, Exporter]],
    error: BaseException | None = None,
) -> None:
    """Keep the target's record; a record that cannot be written never hides the build's
    own outcome. A target's record holds the steps its images depend on (all the steps
    when the build failed before they were known)."""
    vertices = (
        {s.digest for p in result.platforms for s in p.usage.steps} if result is not None else None
    )
    image = images[planned[0][0]] if images and planned else None
    try:
        recorder.finish(
            # Named by the target, as on a builder of nodes: `proj (bake app)`.
            dataclasses.replace(record_request(t.request, t.specs), command="bake", target=t.name),
            result=result,
            error=error,
            image=image_summary(image) if image is not None else None,
            vertices=vertices,
        )
    except BaleError:
        recorder.abort()
        if error is None:
            raise


def _metadata(
    t: _Target,
    images: dict[ImageFormat, ImageOutcome],
    planned: list[tuple[ImageFormat, Exporter]],
    responses: dict[str, list[ExportResponse]],
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if any(s.type in _IMAGE_TYPES for s in t.specs):
        meta = image_metadata(images[planned[0][0]], t.request.tags)
    for response in responses[t.name]:
        meta.update(response.metadata)
    return meta


@contextmanager
def _named(name: str) -> Iterator[None]:
    """A failure while handling one target names it, as buildx does."""
    try:
        yield
    except BaleError as exc:
        raise exc.with_context(f"target {name}") from None


def _finalize(responses: dict[str, list[ExportResponse]]) -> None:
    for name, items in responses.items():
        for response in items:
            if response.finalize is not None:
                with _named(name):
                    response.finalize()


def _calls(plan: Plan, calls: list[_Target]) -> int:
    """`--call check|outline|targets`: each target's answer under its name, as buildx."""
    status, error = 0, None
    out: list[str] = []
    for t in calls:
        if out:
            out.append("")
        out.append(t.name)
        description = plan.targets[t.name].description
        if description:
            out.append(description)
        out.append("")
        with _named(t.name):
            text, code, failed = run_call(t.request, t.files)
        out.append(text)
        status = status or code
        error = error or failed
    print("\n".join(out))
    if error is not None:
        raise error
    return status
