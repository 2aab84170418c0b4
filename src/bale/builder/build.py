"""One build, start to finish: read the Dockerfile per platform, resolve it, convert it into
one graph, solve it. Images and outputs are the exporters' business.

    run_build(store, options, sink, lease) -> BuildResult

Classic mode refuses a multi-platform build before any work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bale.builder import progress as pg
from bale.builder.bases import Fetchers, StoreBases, named_contexts
from bale.builder.cache import BuildCache, FileHashes, StepHistory
from bale.builder.context import BuildContext
from bale.builder.entitlements import check_entitlements, check_runnable
from bale.builder.remotecache.export import export_caches
from bale.builder.remotecache.imports import ChainedCache, ImportedCaches
from bale.builder.remotecache.mounts import restore_mount
from bale.builder.remotecache.spec import CacheSpec
from bale.builder.result import BuildResult, ContextInput
from bale.builder.rootfs import Rootfs
from bale.builder.runtime import Runtime, SolveEnv
from bale.builder.solve import Engine
from bale.emulation.modes import is_native
from bale.errors import BaleError, InvalidArgument
from bale.frontends.dockerfile import ImageBase, ParsedDockerfile, ResolvedBuild, resolve
from bale.frontends.dockerfile.convert import ConvertOptions, convert
from bale.frontends.dockerignore import load_ignore
from bale.frontends.graph import BuildDefinition, CacheMountSpec, ExecOp
from bale.oci.config import source_date_epoch
from bale.oci.platform import Platform, host_platform
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
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
    ssh_socket: str = ""
    pull: bool = False
    # --build-context NAME=VALUE: a directory, docker-image://REF or oci-layout://PATH[:TAG].
    build_contexts: dict[str, str] = field(default_factory=dict)
    compression: str = "gzip"
    cache_from: tuple[CacheSpec, ...] = ()
    cache_to: tuple[CacheSpec, ...] = ()
    # Where bases missing from the store are copied from (see StoreBases.seed).
    base_store: Store | None = None
    # --add-host, --shm-size, --ulimit for every RUN; --allow entitlements.
    extra_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int = 0
    ulimits: tuple[tuple[str, int, int], ...] = ()
    allow: frozenset[str] = frozenset()


def run_build(
    store: Store,
    options: BuildOptions,
    sink: pg.ProgressSink,
    lease: Lease | None = None,
    executor: Callable[[], Executor] | None = None,
) -> BuildResult:
    """Solve the build. Layers and documents it writes are held by `lease` (one made for the
    call when None); hold it until the result is exported."""
    store.require_multi_platform(len(options.files))
    started = time.time()
    if not options.context.is_dir():
        raise InvalidArgument(f"unable to prepare context: path {str(options.context)!r} not found")
    with contextlib.ExitStack() as stack:
        registries = stack.enter_context(_LazyRegistries())
        if lease is None:
            lease = stack.enter_context(store.lease())
        # Bases pulled for this build stay in the store even when the build fails.
        base_lease = stack.enter_context(store.lease(rollback=False))
        bases = StoreBases(
            store, registries.get, base_lease, options.pull, options.base_store
        )
        result = _build(
            store,
            options,
            sink,
            bases,
            lease,
            executor or (lambda: _executor(store)),
            registries.get,
        )
        for platform in result.platforms:
            for layer in platform.layers:
                lease.add(layer.descriptor.digest)
        contexts = tuple(
            ContextInput(name, value, bases.aliases.get(name, ""))
            for name, value in sorted(options.build_contexts.items())
        )
        return dataclasses.replace(
            result, started=started, finished=time.time(), contexts=contexts
        )


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


def _build(
    store: Store,
    options: BuildOptions,
    sink: pg.ProgressSink,
    bases: StoreBases,
    lease: Lease,
    executor: Callable[[], Executor],
    registries: Callable[[], Registries],
) -> BuildResult:
    named_dirs = named_contexts(store, options.build_contexts, bases)
    resolved = resolve_all(options, bases)
    platforms = {str(s.platform) for r in resolved for s in r.stages}
    for r in resolved:
        for stage in r.stages:
            if isinstance(stage.base, ImageBase):
                bases.get(stage.base.ref, stage.platform)
    for warning in dict.fromkeys(bases.warnings):
        sink.emit(pg.Event("warning", "", "", message=f"WARNING: {warning}"))
    definition = convert(
        resolved,
        bases,
        ConvertOptions(
            labels=tuple(options.labels.items()),
            no_cache=options.no_cache,
            no_cache_filter=options.no_cache_filter,
            network=options.network,
            extra_hosts=options.extra_hosts,
            shm_size=options.shm_size,
            ulimits=options.ulimits,
            local_contexts=frozenset(named_dirs),
            native=frozenset(p for p in platforms if is_native(Platform.parse(p))),
        ),
    )
    check_entitlements(definition, options.allow)
    check_runnable(definition)
    hashes = FileHashes(store.meta)
    ignore = load_ignore(options.context, options.dockerfile_path)
    contexts = {"": BuildContext(options.context, ignore.excluded, hashes)}
    contexts.update({name: BuildContext(path, hashes=hashes) for name, path in named_dirs.items()})
    env = SolveEnv(
        contexts=contexts,
        secrets=options.secrets,
        ssh_socket=options.ssh_socket,
        jobs=options.jobs or os.cpu_count() or 2,
        compression=options.compression,
        source_date_epoch=_epoch(options.build_args),
        step_prefix=hashlib.sha256(
            f"{options.context.resolve()}\0{options.dockerfile_path or ''}".encode()
        ).hexdigest()[:16],
    )
    def warn(text: str) -> None:
        sink.emit(pg.Event("warning", "", "", message=f"WARNING: {text}"))

    imported = ImportedCaches(store, lease)
    imported.load(options.cache_from, registries, warn)
    mount_ids = _cache_mount_ids(definition)
    for mount_id in mount_ids:
        _restore_mount(store, imported, mount_id, warn)
    fetcher = Fetchers(store, [bases, imported])
    cache = ChainedCache(BuildCache(store), imported)
    snapshots = Snapshotter(store.root / "snapshots")
    try:
        with snapshots.lease() as snapshot_lease:
            rootfs = Rootfs(store, snapshots, fetcher, snapshot_lease)
            rt = Runtime(store, snapshots, rootfs, sink, executor, env, lease)
            result = Engine(rt, cache, StepHistory(store.meta)).solve(definition)
    finally:
        hashes.flush()
        snapshots.close()
    # The image's layers from an imported cache are in the store before it is exported (a
    # layer a cache hit named arrives now); intermediate layers of imported hits never are
    # unless a step needs them. A pulled base's layers stay where they are until an output
    # needs them, as without a cache.
    for platform in result.platforms:
        for layer in platform.layers:
            digest = layer.descriptor.digest
            if imported.provides(digest) and not store.content.exists(digest):
                imported.fetch(digest)
    cache.settle(store.content.exists)
    export_caches(
        store,
        result,
        options.cache_to,
        lease=lease,
        fetcher=fetcher,
        registries=registries,
        mount_ids=mount_ids,
        warn=warn,
    )
    return result


def _cache_mount_ids(definition: BuildDefinition) -> list[str]:
    ids: dict[str, None] = {}
    for v in definition.graph.vertices.values():
        if isinstance(v.op, ExecOp):
            for m in v.op.mounts:
                if isinstance(m, CacheMountSpec):
                    ids[m.id] = None
    return list(ids)


def _restore_mount(
    store: Store, imported: ImportedCaches, mount_id: str, warn: Callable[[str], None]
) -> None:
    try:
        blob = imported.fetch_mount(mount_id)
        if blob is not None:
            restore_mount(store, mount_id, blob.blob)
    except BaleError as exc:
        warn(f"cache mount {mount_id!r} could not be restored, it starts empty: {exc}")


def _executor(store: Store) -> Executor:
    # Made when the first step runs: a fully cached build never imports the runtimes.
    from bale.builder.executor import SandboxExecutor

    return SandboxExecutor(store.root / "executor")


def _epoch(build_args: dict[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH: the build-arg (BuildKit's form), else the environment variable
    (which buildx passes on as that build-arg)."""
    value = build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH", "")
    return source_date_epoch(value) if value else None
