"""The attestations a build attaches, per platform: SLSA provenance (bale.exporters.provenance)
and SPDX SBOMs (bale.exporters.sbom), written as one attestation manifest per platform
(bale.exporters.attestation_manifest).

    attest = AttestOptions(provenance=ProvenanceOptions.parse("mode=min"), sbom=SbomOptions())
    descriptors = attach(store, lease, result, manifests, attest)

What provenance records comes from the build result (bases with the platform each was
resolved for, downloaded URLs with their digests, named contexts, secrets and SSH ids,
steps) and from the request (`AttestOptions`). When SOURCE_DATE_EPOCH is set the build's
start and finish times and its random invocation id are left out (they are later than the
epoch, which the reproducible-builds spec forbids); without an epoch they are written only
with `mode=max`: by default an unchanged rebuild, or a build from an imported cache, keeps
the index digest of the first (BuildKit writes them in every mode).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bale.builder.result import BuildResult, ContextInput, PlatformResult
from bale.builder.state import LayerRef
from bale.errors import InvalidArgument
from bale.exporters.attestation_manifest import write_attestation_manifest
from bale.exporters.provenance import (
    BuildStep,
    Compression,
    ImageMaterial,
    Material,
    MountUse,
    NamedContext,
    ProvenanceInput,
    ProvenanceOptions,
    URLMaterial,
    provenance_statement,
)
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.platform import host_platform
from bale.oci.reference import Reference
from bale.store import compression as layer_compression
from bale.store.local import Lease, Store

if TYPE_CHECKING:
    from bale.exporters.sbom import LayeredTree

# The default provenance when none is asked for: buildx's `mode=min,inline-only=true`.
DEFAULT_PROVENANCE = ProvenanceOptions(mode="min", inline_only=True)
_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class SbomOptions:
    """`--attest type=sbom,...`. bale scans with its own readers (dpkg, apk, Python, npm,
    Go build info) and never runs an image to do it, so `generator=` is refused."""

    @classmethod
    def parse(cls, attrs: Mapping[str, str]) -> SbomOptions:
        generator = attrs.get("generator", "")
        if generator:
            raise InvalidArgument(
                f"sbom generator={generator} is not supported: bale does not run SBOM "
                "generator images",
                hint="drop generator=: bale's built-in scanners read dpkg, apk, Python, "
                "npm and Go packages without running anything from the image",
            )
        return cls()


@dataclass(frozen=True)
class AttestOptions:
    """Which attestations to attach (None leaves one out), in which manifest shape, and what
    the request was (what provenance records of it)."""

    provenance: ProvenanceOptions | None = DEFAULT_PROVENANCE
    sbom: SbomOptions | None = None
    oci_artifact: bool = True  # the image exporter's `oci-artifact` option
    names: tuple[str, ...] = ()  # the image names: the statements' subjects
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    dockerfile: str = "Dockerfile"  # the file name the frontend read
    dockerfile_source: bytes | None = field(default=None, repr=False)
    frontend_attrs: tuple[tuple[str, str], ...] = ()  # target, no-cache, … as buildx sends
    context: Path | None = None  # the local build context (BUILDKIT_SBOM_SCAN_CONTEXT)
    dockerfile_path: Path | None = None  # where its .dockerignore may sit
    node: str = ""  # the builder node that built it (recorded in provenance)

    @property
    def any(self) -> bool:
        return self.provenance is not None or self.sbom is not None


@dataclass(frozen=True)
class AttestationFile:
    """One statement as a local or tar output writes it next to the files (`path`), with
    whether it may only go inline into an image (buildx's default provenance)."""

    path: str
    statement: Mapping[str, Any]
    inline_only: bool = False


def platform_statements(
    store: Store, result: BuildResult, manifests: Sequence[Descriptor], attest: AttestOptions
) -> list[list[AttestationFile]]:
    """Each platform's statements (provenance, SBOMs: as `attest` asks), made once for both
    the attestation manifests and the files of a local output."""
    if not attest.any:
        return [[] for _ in manifests]
    # Build times and a random id per build only when asked for with mode=max: not with an
    # epoch, nor when the provenance claims to be reproducible, nor by default — an unchanged
    # rebuild, or a build from an imported cache, keeps the index digest of the first.
    timed = attest.provenance is not None and _timed(attest.provenance, result)
    invocation = _invocation_id() if timed else ""
    out = []
    for r, manifest in zip(result.platforms, manifests, strict=True):
        files: list[AttestationFile] = []
        if attest.provenance is not None:
            item = provenance_input(result, r, manifest, attest, attest.provenance, invocation)
            files.append(
                AttestationFile(
                    "provenance.json",
                    provenance_statement(item),
                    inline_only=attest.provenance.inline_only,
                )
            )
        if attest.sbom is not None:
            files += [
                AttestationFile(f"{name}.spdx.json", statement)
                for name, statement in sbom_statements(store, result, r, manifest, attest)
            ]
        out.append(files)
    return out


def attach(
    store: Store,
    lease: Lease,
    result: BuildResult,
    manifests: list[Descriptor],
    attest: AttestOptions,
    statements: Sequence[Sequence[AttestationFile]] | None = None,
) -> list[Descriptor]:
    """One attestation manifest per platform manifest (none when nothing is asked for)."""
    if not attest.any:
        return []
    if statements is None:
        statements = platform_statements(store, result, manifests, attest)
    return [
        write_attestation_manifest(
            store,
            lease,
            manifest,
            [dict(f.statement) for f in files],
            oci_artifact=attest.oci_artifact,
        )
        for manifest, files in zip(manifests, statements, strict=True)
    ]


# -- provenance ------------------------------------------------------------------------------


def _timed(options: ProvenanceOptions, result: BuildResult) -> bool:
    return options.mode == "max" and not options.reproducible and result.source_date_epoch is None


def _invocation_id() -> str:
    # BuildKit's build ids: 25 random base-36 characters.
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(25))


def _when(seconds: float | None, epoch: int | None) -> datetime | None:
    if seconds is None or epoch is not None:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def layer_compressor(kind: str, level: int | None = None) -> Compression:
    """The compressor of the layers a build writes, with what pins its output bytes; a
    `level` asked for by the output (compression-level) is zlib's for gzip and estargz."""
    if kind in ("gzip", "estargz") and (level is not None or kind == "estargz"):
        import zlib

        from bale.store import estargz

        settings: tuple[tuple[str, str], ...] = (("header", "mtime=0,no-name"),)
        if kind == "estargz":
            settings += (("chunkSize", str(estargz.DEFAULT_CHUNK_SIZE)),)
        return Compression(
            kind,
            estargz.DEFAULT_LEVEL if level is None else level,
            "zlib",
            zlib.ZLIB_RUNTIME_VERSION,
            settings,
        )
    if kind == "gzip":
        import isal

        return Compression(
            "gzip",
            layer_compression.GZIP_LEVEL,
            "isa-l",
            str(isal.ISAL_VERSION),
            (
                ("blockSize", str(layer_compression.GZIP_BLOCK)),
                ("header", "mtime=0,no-name"),
                ("pythonIsal", _version("isal")),
            ),
        )
    if kind == "zstd":
        import zstandard

        libzstd = ".".join(str(n) for n in zstandard.ZSTD_VERSION)
        return Compression(
            "zstd",
            layer_compression.ZSTD_LEVEL if level is None else level,
            "libzstd",
            libzstd,
            (("checksum", "true"), ("pythonZstandard", _version("zstandard"))),
        )
    return Compression("uncompressed")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def _materials(
    r: PlatformResult, contexts: tuple[ContextInput, ...]
) -> tuple[list[Material], list[NamedContext], list[tuple[str, str]]]:
    """(materials, named contexts, extra frontend attrs) for one platform."""
    layouts = {c.image_ref: c for c in contexts if c.source.startswith("oci-layout://")}
    images: list[Material] = []
    by_ref: dict[str, ImageMaterial] = {}
    for m in r.materials:
        layout = layouts.get(m.ref)
        digest = Digest.parse(m.digest)
        if layout is not None:
            # An image from an OCI layout on this machine: BuildKit's `pkg:oci`.
            material = ImageMaterial(f"{layout.name}@{digest}", digest, m.platform, local=True)
        else:
            material = ImageMaterial(m.ref, digest, m.platform)
        by_ref.setdefault(m.ref, material)
        images.append(material)
    images += [URLMaterial(d.url, d.digest) for d in r.usage.downloads]
    named: list[NamedContext] = []
    attrs: list[tuple[str, str]] = []
    for ctx in contexts:
        if not ctx.image_ref:
            named.append(NamedContext(ctx.name, ctx.source))
        elif ctx.image_ref in by_ref:
            named.append(NamedContext(ctx.name, ctx.source, by_ref[ctx.image_ref]))
        else:
            # An image context this platform never used is still part of the request.
            attrs.append((f"context:{ctx.name}", ctx.source))
    return images, named, attrs


def _steps(r: PlatformResult) -> tuple[BuildStep, ...]:
    ids = {step.digest: f"step{i}" for i, step in enumerate(r.usage.steps)}
    return tuple(
        BuildStep(
            ids[step.digest],
            f'{{"{step.kind}":{step.definition}}}',
            tuple(f"{ids[d]}:0" for d in step.inputs if d in ids),
        )
        for step in r.usage.steps
    )


def provenance_input(
    result: BuildResult,
    r: PlatformResult,
    manifest: Descriptor,
    attest: AttestOptions,
    options: ProvenanceOptions,
    invocation_id: str = "",
) -> ProvenanceInput:
    materials, named, attrs = _materials(r, result.contexts)
    source = attest.dockerfile_source
    mounts = r.usage.mounts
    return ProvenanceInput(
        platform=r.platform,
        subject=manifest,
        build_platform=host_platform(),
        options=options,
        subject_names=attest.names,
        materials=tuple(materials),
        named_contexts=tuple(named),
        build_args=attest.build_args,
        labels=attest.labels,
        secrets=tuple(MountUse(m.id, not m.required) for m in mounts if m.kind == "secret"),
        ssh=tuple(MountUse(m.id, not m.required) for m in mounts if m.kind == "ssh"),
        dockerfile=attest.dockerfile,
        dockerfile_digest=Digest.of(source) if source is not None else None,
        dockerfile_source=source,
        frontend_attrs=(*attest.frontend_attrs, *attrs),
        started=_when(result.started, result.source_date_epoch)
        if _timed(options, result)
        else None,
        finished=_when(result.finished, result.source_date_epoch)
        if _timed(options, result)
        else None,
        invocation_id=invocation_id,
        compression=layer_compressor(result.compression, result.compression_level),
        network_access=r.usage.network or bool(r.usage.downloads),
        steps=_steps(r),
        node=attest.node,
    )


# -- SBOM ------------------------------------------------------------------------------------


def _layer_tree(store: Store, layers: tuple[LayerRef, ...]) -> LayeredTree:
    from bale.exporters.sbom import LayeredTree
    from bale.exporters.sbom.tree import LayerOpener

    def opener(desc: Descriptor) -> LayerOpener:
        return lambda: store.content.open(desc.digest, desc.size)

    return LayeredTree(
        [opener(layer.descriptor) for layer in layers],
        layer_ids=[str(layer.diff_id) for layer in layers],
    )


def _document_name(names: tuple[str, ...], target: str, core: str) -> str:
    if target == core and names:
        try:
            return Reference.parse(names[0]).familiar()
        except InvalidArgument:
            pass
    return target


def sbom_statements(
    store: Store,
    result: BuildResult,
    r: PlatformResult,
    manifest: Descriptor,
    attest: AttestOptions,
) -> list[tuple[str, dict[str, Any]]]:
    """One SPDX statement for the image, and one per extra scan target (built stages asked
    for with BUILDKIT_SBOM_SCAN_STAGE, the context with BUILDKIT_SBOM_SCAN_CONTEXT)."""
    # The scanners load only for a build that asks for an SBOM.
    from bale.exporters.sbom import CORE, DirectoryTree, sbom_statement, scan_targets
    from bale.exporters.sbom.spdx import spdx_document
    from bale.exporters.sbom.tree import FileTree
    from bale.frontends.dockerignore import load_ignore

    extras: dict[str, FileTree] = {s.name: _layer_tree(store, s.layers) for s in r.scan_stages}
    if r.scan_context and attest.context is not None:
        ignore = load_ignore(attest.context, attest.dockerfile_path)
        extras["context"] = DirectoryTree(attest.context, excluded=ignore.excluded)
    results = scan_targets(_layer_tree(store, r.layers), extras)
    out = []
    # Named as BuildKit names the files: `sbom` for the image, `sbom-NAME` for the others.
    for target in sorted(results, key=lambda name: (name != CORE, name)):
        document = spdx_document(
            results[target].packages,
            name=_document_name(attest.names, target, CORE),
            subject=manifest,
            subject_names=attest.names,
            platform=r.platform,
            epoch=result.source_date_epoch or 0,
        )
        out.append(
            (
                target,
                sbom_statement(
                    document, subject=manifest, subject_names=attest.names, platform=r.platform
                ),
            )
        )
    return out
