"""`bale build` proper: options from the parsed request, progress, outputs, metadata."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bale.builder.build import BuildOptions, run_build
from bale.builder.history import Recorder, RecordRequest, masker, secret_values
from bale.builder.progress import Event, ProgressSink
from bale.builder.result import BuildResult
from bale.cli.attest_flags import attest_options, warn_attestations
from bale.cli.common import open_registries, open_store, store_root
from bale.cli.output_checks import check_destinations
from bale.cli.output_flags import with_annotations
from bale.cli.progress_render import TtyRenderer, renderer
from bale.errors import BaleError, InvalidArgument
from bale.exporters.archives import DockerExporter
from bale.exporters.base import Exporter
from bale.exporters.export_options import ImageFormat
from bale.exporters.image import ImageOutcome, assemble
from bale.exporters.outputs import OutputSpec, exporter_for, parse_output
from bale.frontends.dockerfile.parser import ParsedDockerfile
from bale.oci.platform import Platform
from bale.store.local import Store

if TYPE_CHECKING:
    from bale.builder.result import BuildResult
    from bale.cli.build_cmd import BuildRequest
    from bale.exporters.attest import AttestOptions
    from bale.store.local import Lease, Store


def parse_secret(text: str) -> tuple[str, bytes]:
    """`id=ID,src=PATH` / `id=ID,env=VAR` (type=file|env), as buildx reads --secret; a bare
    `id=ID` takes the environment variable ID when it is set, else the file ID."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise InvalidArgument(
                f"invalid --secret {text!r}: field {part!r} must be a key=value pair"
            )
        key = key.lower()
        if key not in ("type", "id", "src", "source", "env"):
            raise InvalidArgument(f"invalid --secret {text!r}: unexpected key {key!r}")
        fields["src" if key == "source" else key] = value
    secret_id = fields.get("id", "")
    if not secret_id:
        raise InvalidArgument(f"invalid --secret {text!r}: id is required")
    kind = fields.get("type", "")
    if kind not in ("", "file", "env"):
        raise InvalidArgument(f"invalid --secret {text!r}: unsupported secret type {kind!r}")
    src, env = fields.get("src", ""), fields.get("env", "")
    if kind == "env" and not env:
        env, src = src or secret_id, ""
    if not kind and not src and not env:
        if secret_id in os.environ:
            env = secret_id
        else:
            src = secret_id
    if env:
        if env not in os.environ:
            raise InvalidArgument(f"--secret {secret_id}: environment variable {env} is not set")
        return secret_id, os.environ[env].encode()
    try:
        return secret_id, Path(src).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"--secret {secret_id}: cannot read {src}: {exc.strerror}") from None


def ssh_socket(values: tuple[str, ...]) -> str:
    for value in values:
        name, _, path = value.partition("=")
        if name and path:
            return path
        sock = os.environ.get("SSH_AUTH_SOCK", "")
        if not sock:
            raise InvalidArgument("--ssh default: SSH_AUTH_SOCK is not set")
        return sock
    return ""


def build_options(request: BuildRequest, files: dict[Platform, ParsedDockerfile]) -> BuildOptions:
    return BuildOptions(
        context=request.context,
        files=files,
        dockerfile_path=request.dockerfile.path,
        build_args=request.build_args,
        target=request.target,
        labels=request.labels,
        no_cache=request.no_cache,
        no_cache_filter=request.no_cache_filter,
        jobs=request.jobs or 0,
        network=request.network,
        secrets=dict(parse_secret(s) for s in request.secrets),
        ssh_socket=ssh_socket(request.ssh),
        pull=request.pull,
        build_contexts=request.build_contexts,
        cache_from=request.cache_from,
        cache_to=request.cache_to,
        extra_hosts=request.run.extra_hosts,
        shm_size=request.run.shm_size,
        ulimits=request.run.ulimits,
        allow=request.run.allow,
    )


def output_specs(request: BuildRequest) -> list[OutputSpec]:
    specs = []
    for text in request.outputs:
        spec = parse_output(text)
        if spec.type == "docker" and not spec.dest:
            # buildx: `type=docker` without dest (what --load stands for) loads the image;
            # the docker archive's own keys have nothing to say about the store.
            attrs = {k: v for k, v in spec.attrs.items() if k not in ("context", "tar")}
            spec = OutputSpec("image", attrs)
        specs.append(spec)
    if request.load and not any(s.type == "image" for s in specs):
        specs.append(OutputSpec("image"))
    if request.push:
        specs.append(OutputSpec("registry"))
    if not specs:
        # Like buildx's docker driver: the result is loaded into the local store.
        specs.append(OutputSpec("image"))
    return with_annotations(specs, request.annotations)


def run(
    args: argparse.Namespace, request: BuildRequest, files: dict[Platform, ParsedDockerfile]
) -> int:
    specs = output_specs(request)
    if len(files) > 1 and any(s.type == "docker" and s.dest for s in specs):
        # Known before any step runs: refuse now rather than after the whole build.
        raise InvalidArgument(
            "docker exporter does not currently support exporting manifest lists",
            hint="build one platform, or use -o type=oci",
        )
    planned = planned_exporters(args, request, specs)
    options = build_options(request, files)
    attest = attest_options(request, specs)
    check_formats(request, planned)
    check_destinations(specs, request.iidfile, request.metadata_file, store_root(args))
    sink = renderer("quiet" if request.quiet else request.progress)
    try:
        with open_store(args) as store, store.lease(rollback=False) as record_lease:
            recorder = Recorder(
                store,
                sink,
                record_lease,
                mask=masker(secret_values(options.secrets, options.build_args)),
            )
            warn_attestations(recorder, attest, request.quiet or request.progress == "quiet")
            result = None
            try:
                with store.lease() as lease:
                    check_annotations(store, planned, files)
                    result = run_build(store, options, recorder, lease)
                    inline = any(spec.kind == "inline" for spec in request.cache_to)
                    images = images_for(store, lease, result, planned, attest, inline, recorder)
                    responses = [exporter.export(store, images[fmt]) for fmt, exporter in planned]
                    for response in responses:
                        if response.finalize is not None:
                            response.finalize()
                    image = images[planned[0][0]]
            except BaseException as exc:
                _record(store, recorder, request, specs, result, None, exc)
                raise
            exported = {k: v for r in responses for k, v in r.metadata.items()}
            _record(store, recorder, request, specs, result, image, None, exported)
    finally:
        if isinstance(sink, TtyRenderer):
            sink.close()
    _write_files(request, image)
    if request.quiet:
        print(image.image_id)
    return 0


def planned_exporters(
    args: argparse.Namespace, request: BuildRequest, specs: list[OutputSpec]
) -> list[tuple[ImageFormat, Exporter]]:
    """The exporters of the outputs, each with the image format it exports; made before any
    step runs, so a bad output fails first."""
    tags = list(request.tags)
    return [
        (spec.options.format, exporter)
        for spec in specs
        for exporter in exporter_for(
            spec, tags, stdout=sys.stdout.buffer, registries=lambda: open_registries(args)
        )
    ]


def check_formats(request: BuildRequest, planned: list[tuple[ImageFormat, Exporter]]) -> None:
    if any(fmt.rewrite_timestamp for fmt, _ in planned) and not (
        os.environ.get("SOURCE_DATE_EPOCH") or request.build_args.get("SOURCE_DATE_EPOCH")
    ):
        raise InvalidArgument(
            "output attribute rewrite-timestamp=true needs SOURCE_DATE_EPOCH",
            hint="set SOURCE_DATE_EPOCH in the environment or as a --build-arg",
        )


def check_annotations(
    store: Store,
    planned: list[tuple[ImageFormat, Exporter]],
    files: dict[Platform, ParsedDockerfile],
) -> None:
    """What BuildKit refuses about annotations, known before any step: whether the export is
    an index depends on the store's mode (containerd mode always writes one)."""
    from bale.oci.annotations import check
    from bale.store.images import StoreMode

    platforms = list(files)
    index = len(platforms) > 1 or store.mode() is not StoreMode.CLASSIC
    for fmt, _ in planned:
        check(fmt.annotations, platforms, index=index, oci_media_types=fmt.oci_media_types)


def images_for(
    store: Store,
    lease: Lease,
    result: BuildResult,
    planned: list[tuple[ImageFormat, Exporter]],
    attest: AttestOptions,
    inline: bool,
    sink: ProgressSink | None = None,
) -> dict[ImageFormat, ImageOutcome]:
    """One image per distinct format the outputs ask for (layers converted once each)."""
    from bale.exporters.layer_convert import Memo, convert_result
    from bale.store.images import StoreMode

    memo: Memo = {}
    images: dict[ImageFormat, ImageOutcome] = {}
    indexed = len(result.platforms) > 1 or store.mode() is not StoreMode.CLASSIC
    # A docker archive holds no index nor attestations: its media types never matter.
    with_index = {fmt for fmt, exporter in planned if not isinstance(exporter, DockerExporter)}
    for fmt, _ in planned:
        if fmt in images:
            continue
        effective = fmt
        if not fmt.oci_media_types and attest.any and indexed and fmt in with_index:
            # Attestation manifests are OCI documents: BuildKit switches the whole image to
            # OCI media types rather than leave them out, and says so.
            if sink is not None:
                message = "WARNING: forcibly turning on oci-mediatype mode for attestations"
                sink.emit(Event("warning", "", "", message=message))
            effective = dataclasses.replace(fmt, oci_media_types=True)
        converted = convert_result(store, lease, result, effective, memo)
        images[fmt] = assemble(store, converted, lease, attest, inline_cache=inline, fmt=effective)
    return images


def record_request(request: BuildRequest, specs: list[OutputSpec]) -> RecordRequest:
    """What the build record keeps of the request: names and ids, never values."""
    secret_ids = []
    for text in request.secrets:
        fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
        secret_ids.append(fields.get("id", ""))
    return RecordRequest(
        context=str(request.context.resolve()),
        dockerfile=request.dockerfile.name,
        platforms=tuple(str(p) for p in request.platforms),
        target=request.target or "",
        build_args=tuple(sorted(request.build_args)),
        labels=tuple(sorted(request.labels)),
        secrets=tuple(secret_ids),
        ssh=bool(request.ssh),
        tags=request.tags,
        outputs=tuple(spec.type for spec in specs),
        no_cache=request.no_cache,
        cache_from=tuple(spec.kind for spec in request.cache_from),
        cache_to=tuple(spec.kind for spec in request.cache_to),
        network=request.network,
    )


def image_summary(image: ImageOutcome) -> dict[str, Any]:
    return {
        "digest": str(image.target.digest),
        "media_type": image.target.media_type,
        "manifests": [
            {"digest": str(m.digest), "platform": str(m.platform) if m.platform else ""}
            for m in image.manifests
        ],
        "configs": list(image.config_digests),
    }


def _record(
    store: Store,
    recorder: Recorder,
    request: BuildRequest,
    specs: list[OutputSpec],
    result: BuildResult | None,
    image: ImageOutcome | None,
    error: BaseException | None,
    exported: dict[str, str] | None = None,
) -> None:
    """Keep the build's record; with --report, write the report too. A record that cannot
    be written never hides the build's own outcome."""
    try:
        record_id = recorder.finish(
            record_request(request, specs),
            result=result,
            error=error,
            image={**image_summary(image), "exporter_response": exported or {}}
            if image is not None
            else None,
        )
    except BaleError:
        recorder.abort()
        if error is None:
            raise
        return
    if request.report:
        from bale.cli.history_cmd import write_report

        write_report(store, record_id, Path(request.report))


class _Quiet:
    def emit(self, event: object) -> None:
        pass


def record_failure(args: argparse.Namespace, request: BuildRequest, error: BaleError) -> None:
    """A build that failed before any step (a Dockerfile that does not parse) is recorded
    too, as BuildKit records a frontend error."""
    try:
        specs = output_specs(request)
    except BaleError:
        specs = []
    try:
        with open_store(args) as store, store.lease(rollback=False) as lease:
            _record(store, Recorder(store, _Quiet(), lease), request, specs, None, None, error)
    except (BaleError, OSError):
        pass  # the Dockerfile's error is the one to report


def _write_files(request: BuildRequest, image: ImageOutcome) -> None:
    if request.iidfile:
        Path(request.iidfile).write_text(image.image_id)
    if request.metadata_file:
        meta = image_metadata(image, request.tags)
        Path(request.metadata_file).write_text(json.dumps(meta, indent=2) + "\n")
    sys.stdout.flush()


def image_metadata(image: ImageOutcome, tags: tuple[str, ...]) -> dict[str, Any]:
    """What buildx's metadata file says of a built image (its exporter response)."""
    meta: dict[str, Any] = {
        "containerimage.digest": str(image.target.digest),
        "containerimage.descriptor": image.target.to_json(),
    }
    if len(image.config_digests) == 1:
        meta["containerimage.config.digest"] = image.config_digests[0]
    if tags:
        meta["image.name"] = ",".join(tags)
    return meta
