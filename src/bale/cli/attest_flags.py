"""`bale build`'s attestation flags, read as buildx reads them.

- `--attest type=provenance|sbom,...` (repeatable); a later entry of a type replaces an
  earlier one, `disabled=true` turns the type off;
- `--provenance VALUE` is `--attest type=provenance,VALUE`, `--sbom VALUE` is
  `--attest type=sbom,VALUE`; `true`/`false` (any Go boolean) enable or disable;
- with no provenance flag at all a build gets buildx's default, `mode=min,inline-only=true`,
  unless `BUILDX_NO_DEFAULT_ATTESTATIONS` is true.

As in BuildKit, `--provenance=true` (no mode) records `mode=max`. The attestation manifest's
shape is the image exporter's `oci-artifact` output option (`-o type=image,oci-artifact=false`),
defaulting to true unless `BUILDX_NO_DEFAULT_OCI_ARTIFACT` is true or the output sets
`oci-mediatypes=false`. `attest_options` turns the flags and the request into what the
image exporter attaches and records (bale.exporters.attest).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bale.errors import InvalidArgument

if TYPE_CHECKING:
    # Loaded only when a build parses its flags: `--check` and `--call` never need them.
    from bale.builder.progress import ProgressSink
    from bale.cli.build_cmd import BuildRequest
    from bale.exporters.attest import AttestOptions, SbomOptions
    from bale.exporters.outputs import OutputSpec
    from bale.exporters.provenance import ProvenanceOptions

TYPES = ("provenance", "sbom")
NO_DEFAULT_ATTESTATIONS = "BUILDX_NO_DEFAULT_ATTESTATIONS"
NO_DEFAULT_OCI_ARTIFACT = "BUILDX_NO_DEFAULT_OCI_ARTIFACT"
# Outputs that write an image index, and so attestation manifests.
_IMAGE_OUTPUTS = ("image", "oci", "registry")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--attest",
        action="append",
        default=[],
        metavar="type=provenance|sbom,...",
        help="attestation parameters (repeatable)",
    )
    p.add_argument(
        "--provenance",
        default="",
        metavar="true|false|mode=min|max,...",
        help='shorthand for "--attest=type=provenance"',
    )
    p.add_argument(
        "--sbom", default="", metavar="true|false", help='shorthand for "--attest=type=sbom"'
    )


@dataclass(frozen=True)
class Attestations:
    provenance: ProvenanceOptions | None
    sbom: SbomOptions | None


def _env_bool(name: str) -> bool:
    from bale.frontends.bake.buildflags import FlagError, parse_bool

    value = os.environ.get(name)
    if value is None:
        return False
    try:
        return parse_bool(value, name)
    except FlagError as exc:
        raise InvalidArgument(f"invalid {name}: {exc}", hint="use true or false") from None


def parse_attestations(attest: Sequence[str], provenance: str, sbom: str) -> Attestations:
    """What the flags ask for; errors are buildx's and BuildKit's."""
    from bale.exporters.attest import DEFAULT_PROVENANCE, SbomOptions
    from bale.exporters.provenance import ProvenanceOptions
    from bale.frontends.bake.buildflags import (
        Attest,
        FlagError,
        canonicalize_attest,
        normalize_attests,
    )

    texts = list(attest)
    if provenance:
        texts.append(canonicalize_attest("provenance", provenance))
    if sbom:
        texts.append(canonicalize_attest("sbom", sbom))
    try:
        parsed = normalize_attests([Attest.parse(text) for text in texts]) or []
    except FlagError as exc:
        raise InvalidArgument(
            f"invalid --attest value: {exc}", hint="use --attest type=provenance|sbom,KEY=VALUE"
        ) from None
    by_type: dict[str, Attest] = {}
    for item in parsed:
        if item.type not in TYPES:
            raise InvalidArgument(
                f'unknown attestation type "{item.type}"', hint="use type=provenance or type=sbom"
            )
        by_type[item.type] = item
    prov: ProvenanceOptions | None = None
    given = by_type.get("provenance")
    if given is None:
        if not _env_bool(NO_DEFAULT_ATTESTATIONS):
            prov = DEFAULT_PROVENANCE
    elif not given.disabled:
        prov = ProvenanceOptions.parse(given.attrs)
    wanted = by_type.get("sbom")
    return Attestations(
        prov, SbomOptions.parse(wanted.attrs) if wanted and not wanted.disabled else None
    )


def oci_artifact(specs: Iterable[OutputSpec]) -> bool:
    """The attestation manifest shape the image outputs ask for: one answer for all of them,
    since they share one index."""
    default = not _env_bool(NO_DEFAULT_OCI_ARTIFACT)
    values: set[bool] = set()
    for spec in specs:
        if spec.type not in _IMAGE_OUTPUTS:
            continue
        oci_types = spec.flag("oci-mediatypes", True)
        value = spec.flag("oci-artifact", default and oci_types)
        if value and not oci_types:
            raise InvalidArgument(
                'exporter option "oci-artifact=true" conflicts with "oci-mediatypes=false"'
            )
        values.add(value)
    if len(values) > 1:
        raise InvalidArgument(
            "outputs disagree on oci-artifact: they share one image index",
            hint="give every image output the same oci-artifact value",
        )
    return values.pop() if values else default


def attest_options(request: BuildRequest, specs: list[OutputSpec]) -> AttestOptions:
    """What to attest (the attestation flags, the outputs' `oci-artifact`) and what the
    request was, as provenance records it."""
    from bale.exporters.attest import AttestOptions
    from bale.exporters.outputs import image_names

    asked = parse_attestations(request.attest, request.provenance, request.sbom)
    names: list[str] = []
    for spec in specs:
        names += [n for n in image_names(spec, list(request.tags)) if n not in names]
    attrs: list[tuple[str, str]] = []
    if request.target:
        attrs.append(("target", request.target))
    if request.no_cache:
        attrs.append(("no-cache", ""))
    elif request.no_cache_filter:
        attrs.append(("no-cache", ",".join(request.no_cache_filter)))
    if request.network != "default":
        attrs.append(("force-network-mode", request.network))
    build_args = dict(request.build_args)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and "SOURCE_DATE_EPOCH" not in build_args:
        build_args["SOURCE_DATE_EPOCH"] = epoch  # buildx passes the variable as a build-arg
    path = request.dockerfile.path
    return AttestOptions(
        provenance=asked.provenance,
        sbom=asked.sbom,
        oci_artifact=oci_artifact(specs),
        names=tuple(names),
        build_args=tuple(sorted(build_args.items())),
        labels=tuple(sorted(request.labels.items())),
        dockerfile=path.name if path else "Dockerfile",
        dockerfile_source=request.dockerfile.text.encode(),
        frontend_attrs=tuple(attrs),
        context=request.context,
        dockerfile_path=path,
        node=os.environ.get("BALE_NODE_NAME", ""),  # set by `bale node build`
    )


def warn_attestations(sink: ProgressSink, attest: AttestOptions, quiet: bool) -> None:
    """BuildKit's SecretsUsedInArgOrEnv, when provenance will record a secret-looking value."""
    from bale.builder import progress as pg
    from bale.exporters.provenance import secret_arg_warnings

    if attest.provenance is None:
        return
    for warning in secret_arg_warnings(attest.provenance, (k for k, _ in attest.build_args)):
        text = f"WARNING: {warning.rule}: {warning.message} ({warning.url})"
        if quiet:
            print(text, file=sys.stderr)
        else:
            sink.emit(pg.Event("warning", "", "", message=text))
