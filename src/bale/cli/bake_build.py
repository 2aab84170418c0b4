"""`bale bake` building: each target of the plan becomes the request `bale build` would make
of the same flags, and every target and platform is solved in one graph.

Results are atomic across targets (docker/buildx#1089): nothing is exported until every
target has built; pushes and files come before store tags, so a failed push leaves no new
tag either. A failure names its target, and a step's failure its Dockerfile line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bale.builder.build import TargetBuild, run_builds
from bale.builder.remotecache.spec import parse_cache_spec
from bale.cli.attest_flags import attest_options, warn_attestations
from bale.cli.build_cmd import BuildRequest, parse_platforms, run_call
from bale.cli.build_run import build_options, image_metadata, output_specs
from bale.cli.common import open_registries, open_store
from bale.cli.progress_render import TtyRenderer, renderer
from bale.errors import BaleError, InvalidArgument
from bale.exporters.base import Exporter, ExportResponse
from bale.exporters.image import ImageOutcome, assemble
from bale.exporters.outputs import OutputSpec, exporter_for
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


def request_for(t: PlanTarget, progress: str) -> BuildRequest:
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
    )


def _target(t: PlanTarget, progress: str) -> _Target:
    try:
        request = request_for(t, progress)
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
    targets = [_target(plan.targets[name], progress) for name in sorted(plan.targets)]
    calls = [t for t in targets if t.request.call != "build"]
    if calls:
        return _calls(plan, calls)
    exporters: dict[str, list[Exporter]] = {}
    for t in targets:
        try:
            exporters[t.name] = [
                exporter
                for spec in t.specs
                for exporter in exporter_for(
                    spec,
                    list(t.request.tags),
                    stdout=sys.stdout.buffer,
                    registries=lambda: open_registries(args),
                )
            ]
        except BaleError as exc:
            raise exc.with_context(f"target {t.name}") from None
    attest = {t.name: attest_options(t.request, t.specs) for t in targets}
    sink = renderer(progress)
    quiet = progress == "quiet"
    for t in targets:
        warn_attestations(sink, attest[t.name], quiet)
    builds = [TargetBuild(t.name, build_options(t.request, t.files), t.links) for t in targets]
    metadata: dict[str, Any] = {}
    try:
        with open_store(args) as store, store.lease() as lease:
            results = run_builds(store, builds, sink, lease)
            images: dict[str, ImageOutcome] = {}
            for t in targets:
                if not exporters[t.name] and not args.metadata_file:
                    continue
                inline = any(spec.kind == "inline" for spec in t.request.cache_to)
                images[t.name] = _assemble(store, results[t.name], lease, attest[t.name], inline, t)
            # Every target built: outputs now, store tags last (see the module's docstring).
            responses: dict[str, list[ExportResponse]] = {t.name: [] for t in targets}
            ordered = sorted(
                ((t, e) for t in targets for e in exporters[t.name]),
                key=lambda te: isinstance(te[1], StoreImageExporter),
            )
            finalized = False
            for t, exporter in ordered:
                if isinstance(exporter, StoreImageExporter) and not finalized:
                    _finalize(responses)
                    finalized = True
                try:
                    responses[t.name].append(exporter.export(store, images[t.name]))
                except BaleError as exc:
                    raise exc.with_context(f"target {t.name}") from None
            if not finalized:
                _finalize(responses)
            for t in targets:
                if t.name in images and not plan.targets[t.name].linked:
                    meta = (
                        image_metadata(images[t.name], t.request.tags)
                        if any(s.type in _IMAGE_TYPES for s in t.specs)
                        else {}
                    )
                    for response in responses[t.name]:
                        meta.update(response.metadata)
                    metadata[t.name] = meta
    finally:
        if isinstance(sink, TtyRenderer):
            sink.close()
    if args.metadata_file:
        Path(args.metadata_file).write_text(json.dumps(metadata, indent=2) + "\n")
    sys.stdout.flush()
    return 0


def _assemble(
    store: Store, result: BuildResult, lease: Lease, attest: AttestOptions, inline: bool, t: _Target
) -> ImageOutcome:
    try:
        return assemble(store, result, lease, attest, inline_cache=inline)
    except BaleError as exc:
        raise exc.with_context(f"target {t.name}") from None


def _finalize(responses: dict[str, list[ExportResponse]]) -> None:
    for name, items in responses.items():
        for response in items:
            if response.finalize is not None:
                try:
                    response.finalize()
                except BaleError as exc:
                    raise exc.with_context(f"target {name}") from None


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
        try:
            text, code, failed = run_call(t.request, t.files)
        except BaleError as exc:
            raise exc.with_context(f"target {t.name}") from None
        out.append(text)
        status = status or code
        error = error or failed
    print("\n".join(out))
    if error is not None:
        raise error
    return status
