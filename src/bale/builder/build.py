"""One build, start to finish: read the Dockerfile, resolve per platform, solve, assemble.

    run_build(store, options, sink) -> BuildOutcome

Classic mode refuses a multi-platform build before any work. A failed build leaves no
image, and the content it wrote is removed by the lease rollback and later GC.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bale.builder import progress as pg
from bale.builder.engine import BaseImage, BuildRequest, Engine, LayerRef, PlatformResult
from bale.errors import BaleError, InvalidArgument, NotFound
from bale.exporters.attestations import (
    PACKAGE_DATABASES,
    ProvenanceInput,
    attestation_manifest,
    provenance,
    sbom,
)
from bale.frontends.dockerfile import ImageBase, ParsedDockerfile, ResolvedBuild, resolve
from bale.frontends.dockerignore import load_ignore
from bale.oci import mediatype
from bale.oci.config import RuntimeConfig
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform, host_platform
from bale.oci.reference import Reference
from bale.store.archive_load import load_archive
from bale.store.bases import local_base
from bale.store.compression import decompressed
from bale.store.images import StoreMode
from bale.store.local import Lease, Store
from bale.store.snapshots import Snapshotter

if TYPE_CHECKING:
    from bale.builder.executor import Executor
    from bale.registry.transport import Registries


@dataclass(frozen=True)
class BuildOptions:
    context: Path
    # The Dockerfile for each target platform (a template renders once per platform).
    files: dict[Platform, ParsedDockerfile]
    dockerfile_path: Path | None = None  # where .dockerignore beside it is looked for
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    jobs: int = 0
    network: str = "default"
    secrets: dict[str, bytes] = field(default_factory=dict)
    ssh_socket: str = ""
    pull: bool = False
    # --build-context NAME=VALUE: a directory, docker-image://REF or oci-layout://PATH[:TAG].
    build_contexts: dict[str, str] = field(default_factory=dict)
    provenance: bool = True  # a SLSA provenance attestation per platform (containerd mode)
    sbom: bool = False  # an SPDX SBOM of the installed packages


@dataclass(frozen=True)
class BuildOutcome:
    target: Descriptor  # the index (or, for one platform in classic mode, the manifest)
    manifests: tuple[Descriptor, ...]
    config_digests: tuple[str, ...]
    platforms: tuple[PlatformResult, ...]

    @property
    def image_id(self) -> str:
        """What docker calls the image's ID: the index's digest, or for a plain manifest (the
        classic store) its config's digest."""
        if mediatype.is_manifest(self.target.media_type):
            return self.config_digests[0]
        return str(self.target.digest)


class StoreBases:
    """Base images: from the local store, else their registry (documents now, layers lazily)."""

    def __init__(
        self,
        store: Store,
        registries: Callable[[], Registries] | None,
        lease: Lease | None = None,
        pull: bool = False,
    ) -> None:
        self.store = store
        self._registries = registries
        self.lease = lease
        self.pull = pull
        self.found: dict[tuple[str, str], BaseImage] = {}
        # Named contexts standing for images: FROM NAME / COPY --from=NAME use their image.
        self.aliases: dict[str, str] = {}
        self.warnings: list[str] = []

    def get(self, ref: str, platform: Platform) -> BaseImage:
        ref = self.aliases.get(ref, ref)
        key = (ref, str(platform))
        if key not in self.found:
            self.found[key] = self._load(ref, platform)
        return self.found[key]

    def _load(self, ref: str, platform: Platform) -> BaseImage:
        try:
            reference = Reference.parse(ref)
            base = None if self.pull else local_base(self.store, reference, platform)
            if base is None:
                from bale.registry.pulling import ensure_image

                base = ensure_image(
                    self.store,
                    reference,
                    platform,
                    registries=self._registries() if self._registries else None,
                    pull=self.pull,
                    lease=self.lease,
                )
        except NotFound as exc:
            raise NotFound(
                f"failed to resolve source metadata for {_full(ref)}: {exc.message}",
                hint=exc.hint or "import, load or pull the image first, or check its name",
            ) from None
        except BaleError as exc:
            local = self._local_platforms(ref)
            if local is None:
                raise exc.__class__(
                    f"failed to resolve source metadata for {_full(ref)}: {exc.message}",
                    hint=exc.hint,
                ) from None
            raise NotFound(
                f"failed to resolve source metadata for {ref}: the local image has no "
                f"{platform} (it has {', '.join(local)}) and its registry answered: "
                f"{exc.message}",
                hint="import or pull that platform, or build only for the platforms it has",
            ) from None
        if not base.exact_platform:
            # BuildKit's InvalidBaseImagePlatform: a single-platform base is used anyway.
            self.warnings.append(
                f"InvalidBaseImagePlatform: Base image {ref} was pulled with platform "
                f"{base.config.platform}, expected {platform} for current build"
            )
        manifest = self.store.manifest(base.manifest)
        layers = tuple(
            LayerRef(layer, diff_id)
            for layer, diff_id in zip(manifest.layers, base.config.diff_ids, strict=True)
        )
        plain = Descriptor(base.manifest.media_type, base.manifest.digest, base.manifest.size)
        fetch = None
        if self._registries is not None and not all(
            self.store.content.exists(layer.descriptor.digest) for layer in layers
        ):
            registries, store, lease = self._registries, self.store, self.lease

            def fetch() -> None:
                from bale.registry.pulling import fetch_layers

                fetch_layers(store, base.reference, plain, registries=registries(), lease=lease)

        return BaseImage(ref, plain, base.config, layers, fetch, str(base.resolved.digest))

    def _local_platforms(self, ref: str) -> list[str] | None:
        try:
            target = self.store.resolve(ref)
        except BaleError:
            return None
        return [str(p) for p, _ in self.store.platform_manifests(target)]

    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None:
        return self.get(ref, platform).config.config


def _full(ref: str) -> str:
    """The reference as BuildKit names it in errors (docker.io/library/name:tag)."""
    try:
        return str(Reference.parse(ref))
    except BaleError:
        return ref


def named_contexts(store: Store, contexts: dict[str, str], bases: StoreBases) -> dict[str, Path]:
    """Apply --build-context: images become aliases of `bases`; directories are returned."""
    dirs: dict[str, Path] = {}
    for name, value in contexts.items():
        if value.startswith("docker-image://"):
            bases.aliases[name] = value.removeprefix("docker-image://")
        elif value.startswith("oci-layout://"):
            bases.aliases[name] = load_layout_image(store, value.removeprefix("oci-layout://"))
        elif "://" in value:
            raise InvalidArgument(
                f"--build-context {name}={value}: unsupported source",
                hint="use a directory, docker-image://REF or oci-layout://PATH[:TAG]",
            )
        else:
            path = Path(value)
            if not path.is_dir():
                raise InvalidArgument(f"--build-context {name}: {value} is not a directory")
            dirs[name] = path
    return dirs


def load_layout_image(store: Store, spec: str) -> str:
    """Import the image an OCI layout directory names (`PATH[:TAG]`, or `PATH@sha256:…`) and
    return a reference to it in the store."""
    path, _, selector = spec.partition("@")
    if not selector and ":" in Path(path).name:
        path, _, selector = path.rpartition(":")
    root = Path(path)
    if not (root / "index.json").is_file():
        raise InvalidArgument(f"oci-layout://{spec}: no index.json in {path}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=".", recursive=True)
    buffer.seek(0)
    loaded = load_archive(store, buffer)
    for item in loaded:
        tag = item.name.rsplit(":", 1)[-1] if item.name else ""
        if not selector or selector in (tag, str(item.target.digest)):
            # By digest: the content is in the store, the reference needs no name there.
            return f"bale-build-context@{item.target.digest}"
    raise NotFound(f"oci-layout://{spec}: no image tagged {selector!r} in the layout")


def resolve_all(options: BuildOptions, bases: StoreBases) -> list[ResolvedBuild]:
    build_platform = host_platform()
    return [
        resolve(
            parsed,
            target_platform=platform,
            build_platform=build_platform,
            build_args=options.build_args,
            target=options.target,
            base_configs=bases,
            filename=parsed.filename,
        )
        for platform, parsed in options.files.items()
    ]


def run_build(store: Store, options: BuildOptions, sink: pg.ProgressSink) -> BuildOutcome:
    store.require_multi_platform(len(options.files))
    if not options.context.is_dir():
        raise InvalidArgument(f"unable to prepare context: path {str(options.context)!r} not found")
    with _LazyRegistries() as registries, store.lease(rollback=False) as lease:
        return _build(store, options, sink, StoreBases(store, registries.get, lease, options.pull))


class _LazyRegistries:
    """Registry sessions made on first use: a build from local bases never opens one."""

    def __init__(self) -> None:
        self._registries: Registries | None = None

    def get(self) -> Registries:
        if self._registries is None:
            from bale.registry.hosts import HostsConfig
            from bale.registry.transport import Registries, RegistryOptions

            self._registries = Registries(RegistryOptions(hosts=HostsConfig.load()))
        return self._registries

    def __enter__(self) -> _LazyRegistries:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._registries is not None:
            self._registries.close()


def _build(
    store: Store, options: BuildOptions, sink: pg.ProgressSink, bases: StoreBases
) -> BuildOutcome:
    named_dirs = named_contexts(store, options.build_contexts, bases)
    resolved = resolve_all(options, bases)
    for r in resolved:
        for stage in r.stages:
            if isinstance(stage.base, ImageBase):
                bases.get(stage.base.ref, stage.platform)
    for warning in dict.fromkeys(bases.warnings):
        sink.emit(pg.Event("warning", "", "", message=f"WARNING: {warning}"))
    ignore = load_ignore(options.context, options.dockerfile_path)
    request = BuildRequest(
        context=options.context,
        resolved=resolved,
        bases=bases.found,
        labels=options.labels,
        no_cache=options.no_cache,
        no_cache_filter=options.no_cache_filter,
        jobs=options.jobs or os.cpu_count() or 2,
        network=options.network,
        secrets=options.secrets,
        ssh_socket=options.ssh_socket,
        source_date_epoch=_epoch(options.build_args),
        excluded=ignore.excluded,
        image_lookup=bases.get,
        named_dirs=named_dirs,
    )
    snapshots = Snapshotter(store.root / "snapshots")
    try:
        engine = Engine(store, snapshots, lambda: _executor(store), sink)
        results = engine.solve(request)
    finally:
        snapshots.close()
    with store.lease() as lease:
        return assemble(store, results, lease, options)


def _executor(store: Store) -> Executor:
    # Made when the first step runs: a fully cached build never imports the runtimes.
    from bale.builder.executor import Executor

    return Executor(store.root / "executor")


def _epoch(build_args: dict[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH: the build-arg (BuildKit's form), else the environment variable
    (which buildx passes on as that build-arg)."""
    value = build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH {value!r}") from None


def assemble(
    store: Store,
    results: list[PlatformResult],
    lease: Lease,
    options: BuildOptions | None = None,
) -> BuildOutcome:
    """Configs and manifests per platform, then one index over them (OCI media types), with
    a provenance attestation per platform (and an SBOM when asked) in containerd mode."""
    manifests = []
    configs = []
    for r in results:
        for layer in r.layers:
            lease.add(layer.descriptor.digest)
        config_desc = store.put_document(r.config.encode(), mediatype.OCI_CONFIG, lease)
        configs.append(str(config_desc.digest))
        manifest = Manifest(config=config_desc, layers=tuple(x.descriptor for x in r.layers))
        manifests.append(
            store.put_document(
                manifest.encode(), mediatype.OCI_MANIFEST, lease, platform=r.config.platform
            )
        )
    if len(results) == 1 and store.mode() is StoreMode.CLASSIC:
        only = manifests[0]
        target = Descriptor(only.media_type, only.digest, only.size)
    else:
        entries = list(manifests)
        if options is not None:
            entries += _attestations(store, lease, results, manifests, options)
        index = Index(manifests=tuple(entries))
        target = store.put_document(index.encode(), mediatype.OCI_INDEX, lease)
    return BuildOutcome(target, tuple(manifests), tuple(configs), tuple(results))


def _attestations(
    store: Store,
    lease: Lease,
    results: list[PlatformResult],
    manifests: list[Descriptor],
    options: BuildOptions,
) -> list[Descriptor]:
    if not (options.provenance or options.sbom):
        return []
    dockerfile = options.dockerfile_path.name if options.dockerfile_path else "Dockerfile"
    out = []
    for result, manifest in zip(results, manifests, strict=True):
        name = f"pkg:docker/bale-build?platform={result.platform.dirname}"
        statements = []
        if options.provenance:
            item = ProvenanceInput(
                platform=result.platform,
                manifest=manifest,
                materials=result.base_digests,
                build_args=tuple(sorted(options.build_args.items())),
                dockerfile=dockerfile,
            )
            statements.append(provenance(item, name))
        if options.sbom:
            statements.append(sbom(result.platform, manifest, _packages(store, result), name))
        out.append(attestation_manifest(store, lease, manifest, statements))
    return out


def _packages(store: Store, result: PlatformResult) -> list[tuple[str, str]]:
    """Packages in the image: the package database the last layer to write one holds."""
    for layer in reversed(result.layers):
        with store.content.open(layer.descriptor.digest, layer.descriptor.size) as blob:
            _, raw = decompressed(blob)
            try:
                with tarfile.open(fileobj=raw, mode="r|") as tar:  # type: ignore[call-overload]
                    for info in tar:
                        parser = PACKAGE_DATABASES.get(info.name.lstrip("./"))
                        if parser is not None and info.isfile():
                            f = tar.extractfile(info)
                            if f is not None:
                                return parser(f.read().decode("utf-8", errors="replace"))
            except tarfile.TarError:
                continue
    return []

