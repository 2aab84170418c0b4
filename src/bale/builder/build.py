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
from collections.abc import Callable, Mapping, Sequence
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
from bale.errors import BaleError, DockerfileError, InvalidArgument
from bale.frontends.dockerfile import (
    ContextBase,
    ImageBase,
    ParsedDockerfile,
    ResolvedBuild,
    ScratchBase,
    resolve,
)
from bale.frontends.dockerfile.convert import ConvertOptions, convert
from bale.frontends.dockerfile.resolve import Base, BaseConfigs
from bale.frontends.dockerignore import load_ignore
from bale.frontends.graph import BuildDefinition, CacheMountSpec, ExecOp, Graph, PlatformTarget
from bale.oci import canonical
from bale.oci.config import RuntimeConfig, source_date_epoch
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
    return run_builds(store, [TargetBuild("", options)], sink, lease, executor)[""]


@dataclass(frozen=True)
class TargetBuild:
    """One of several builds solved in one graph (bake's targets)."""

    name: str
    options: BuildOptions
    # Named contexts that are another build's result (`target:NAME`): context -> build name.
    links: Mapping[str, str] = field(default_factory=dict)


def run_builds(
    store: Store,
    builds: Sequence[TargetBuild],
    sink: pg.ProgressSink,
    lease: Lease | None = None,
    executor: Callable[[], Executor] | None = None,
) -> dict[str, BuildResult]:
    """Solve several builds in one graph: work they share (same inputs, same steps) runs
    once, the rest in parallel. Results by build name; a failure names the build."""
    for build in builds:
        store.require_multi_platform(len(build.options.files))
        context = build.options.context
        if not context.is_dir():
            missing = InvalidArgument(f"unable to prepare context: path {str(context)!r} not found")
            raise _named(missing, [build.name])
    started = time.time()
    with contextlib.ExitStack() as stack:
        registries = stack.enter_context(_LazyRegistries())
        if lease is None:
            lease = stack.enter_context(store.lease())
        # Bases pulled for this build stay in the store even when the build fails.
        base_lease = stack.enter_context(store.lease(rollback=False))
        results = _build(
            store,
            _ordered(builds),
            sink,
            base_lease,
            lease,
            executor or (lambda: _executor(store)),
            registries.get,
        )
        finished = time.time()
        out = {}
        for plan, result in results:
            for platform in result.platforms:
                for layer in platform.layers:
                    lease.add(layer.descriptor.digest)
            contexts = tuple(
                ContextInput(name, value, plan.bases.aliases.get(name, ""))
                for name, value in sorted(plan.build.options.build_contexts.items())
            )
            out[plan.build.name] = dataclasses.replace(
                result, started=started, finished=finished, contexts=contexts
            )
        return out


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


def _ordered(builds: Sequence[TargetBuild]) -> list[TargetBuild]:
    """Builds after the builds their linked contexts name."""
    by_name = {b.name: b for b in builds}
    out: list[TargetBuild] = []
    state: dict[str, str] = {}

    def visit(build: TargetBuild, path: tuple[str, ...]) -> None:
        if state.get(build.name) == "done":
            return
        if state.get(build.name) == "visiting":
            cycle = " -> ".join((*path, build.name))
            raise InvalidArgument(f"cycle in linked contexts: {cycle}")
        state[build.name] = "visiting"
        for context, name in sorted(build.links.items()):
            found = by_name.get(name)
            if found is None:
                raise InvalidArgument(
                    f"target {build.name}: context {context!r} names target {name!r}, "
                    "which is not part of this build"
                )
            visit(found, (*path, build.name))
        state[build.name] = "done"
        out.append(build)

    for build in builds:
        visit(build, ())
    return out


class _LinkedConfigs:
    """What the Dockerfile resolver asks of a base: another build's config for a linked
    context, else the base image's."""

    def __init__(self, bases: StoreBases, linked: Mapping[tuple[str, str], PlatformTarget]):
        self.bases = bases
        self.linked = linked
        self.names = {name for name, _ in linked}

    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None:
        if ref in self.names:
            results = [t for (name, _), t in self.linked.items() if name == ref]
            found = self.linked.get((ref, str(platform)), results[0] if len(results) == 1 else None)
            return found.config.config if found is not None else RuntimeConfig()
        return self.bases.base_config(ref, platform)


def context_bases(options: BuildOptions, links: Sequence[str] = ()) -> dict[str, Base]:
    """What each --build-context stands for in the Dockerfile: the empty image, a directory,
    or an image (docker-image://, oci-layout://, another target's result) known by its name."""
    out: dict[str, Base] = {name: ImageBase(name) for name in links}
    for name, value in options.build_contexts.items():
        if name in out:
            continue
        if value == "docker-image://scratch":
            out[name] = ScratchBase()
        elif "://" in value:
            out[name] = ImageBase(name)
        else:
            out[name] = ContextBase(name)
    return out


def resolve_all(
    options: BuildOptions, bases: BaseConfigs, links: Sequence[str] = ()
) -> list[ResolvedBuild]:
    build_platform = host_platform()
    contexts = context_bases(options, links)
    return [
        resolve(
            parsed,
            target_platform=platform,
            build_platform=build_platform,
            build_args=options.build_args,
            target=options.target,
            base_configs=bases,
            filename=parsed.filename,
            contexts=contexts,
        )
        for platform, parsed in options.files.items()
    ]


@dataclass
class _Planned:
    """One build converted into the shared graph, with the inputs its steps read."""

    build: TargetBuild
    bases: StoreBases
    targets: tuple[PlatformTarget, ...]
    env: SolveEnv
    scope: str


def _identity(options: BuildOptions) -> str:
    """What the local inputs of a build are: steps reading them merge only when alike."""
    ignore = load_ignore(options.context, options.dockerfile_path)
    doc = {
        "context": str(options.context.resolve()),
        "ignore": [[p.text, p.exclusion] for p in ignore.patterns],
        "contexts": sorted(
            [k, v if "://" in v else str(Path(v).resolve())]
            for k, v in options.build_contexts.items()
        ),
        "secrets": sorted([k, hashlib.sha256(v).hexdigest()] for k, v in options.secrets.items()),
        "ssh": options.ssh_socket,
    }
    return hashlib.sha256(canonical.dumps(doc)).hexdigest()[:16]


def _lint(options: BuildOptions, resolved: Sequence[ResolvedBuild], sink: pg.ProgressSink) -> None:
    """BuildKit's lint warnings for the stages built; with `# check=error=true` a finding
    fails the build before any step runs."""
    from bale.frontends.dockerfile.checks import build_check

    ignore = load_ignore(options.context, options.dockerfile_path)
    shown: dict[str, None] = {}
    failure: DockerfileError | None = None
    for r in resolved:
        parsed = options.files.get(r.target_platform)
        if parsed is None:
            continue
        result = build_check(
            parsed,
            {s.index for s in r.stages},
            target_platform=r.target_platform,
            build_platform=r.build_platform,
            build_args=options.build_args,
            target=options.target,
            dockerignore=ignore,
        )
        shown.update(dict.fromkeys(f.short for f in result.findings))
        message = result.error_message
        if failure is None and message is not None:
            failure = DockerfileError(message, source=result.findings[0].source, lines=result.lines)
    for short in shown:
        sink.emit(pg.Event("warning", "", "", message=f"WARNING: {short}"))
    if failure is not None:
        raise failure


def _plan(
    store: Store,
    build: TargetBuild,
    graph: Graph,
    sink: pg.ProgressSink,
    base_lease: Lease,
    registries: Callable[[], Registries],
    done: Mapping[str, _Planned],
    scope: str,
    hashes: FileHashes,
    prefix: bool,
) -> _Planned:
    options = build.options
    bases = StoreBases(store, registries, base_lease, options.pull, options.base_store)
    plain = {k: v for k, v in options.build_contexts.items() if k not in build.links}
    named_dirs = named_contexts(store, plain, bases)
    linked = {
        (context, str(t.platform)): t
        for context, name in build.links.items()
        for t in done[name].targets
    }
    resolved = resolve_all(options, _LinkedConfigs(bases, linked), tuple(build.links))
    platforms = {str(s.platform) for r in resolved for s in r.stages}
    _lint(options, resolved, sink)
    lines: dict[tuple[str, str], int] = {}
    for r in resolved:
        for stage in r.stages:
            if isinstance(stage.base, ImageBase) and stage.base.ref not in build.links:
                bases.get(stage.base.ref, stage.platform)
                lines.setdefault((stage.base.ref, str(stage.platform)), stage.from_.source.start)
    for ref, pulled, wanted in dict.fromkeys(bases.mismatched):
        # BuildKit's lint warning, as its progress prints it.
        line = lines.get((ref, wanted))
        where = f" (line {line})" if line else ""
        sink.emit(
            pg.Event(
                "warning",
                "",
                "",
                message=(
                    f"WARNING: InvalidBaseImagePlatform: Base image {ref} was pulled with platform "
                    f'"{pulled}", expected "{wanted}" for current build{where}'
                ),
            )
        )
    before = set(graph.vertices)
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
            hostname=options.build_args.get("BUILDKIT_SANDBOX_HOSTNAME", ""),
            local_contexts=frozenset(named_dirs),
            scratch_contexts=frozenset(
                k for k, v in options.build_contexts.items() if v == "docker-image://scratch"
            ),
            native=frozenset(p for p in platforms if is_native(Platform.parse(p))),
            scope=scope,
            linked=linked,
        ),
        graph,
    )
    # This build's own steps need its entitlements (a step shared with an earlier target
    # was checked for that one).
    own = [graph.vertices[d] for d in graph.vertices.keys() - before]
    check_entitlements(own, options.allow)
    check_runnable(own)
    if prefix:
        _prefix_names(graph, before, build.name)
    ignore = load_ignore(options.context, options.dockerfile_path)
    contexts = {"": BuildContext(options.context, ignore.excluded, hashes)}
    # A directory context leaves out what its own .dockerignore says, as BuildKit's local:.
    contexts.update(
        {
            name: BuildContext(path, load_ignore(path).excluded, hashes)
            for name, path in named_dirs.items()
        }
    )
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
    return _Planned(build, bases, definition.targets, env, scope)


def _prefix_names(graph: Graph, before: set[str], name: str) -> None:
    """Steps first added by build `name` say so, as buildx names a bake target's steps:
    "[app linux/amd64 build 2/4] RUN make" (a step shared with an earlier build keeps its
    first name)."""
    for digest, v in graph.vertices.items():
        if digest not in before:
            label = f"[{name} {v.name[1:]}" if v.name.startswith("[") else f"[{name}] {v.name}"
            graph.vertices[digest] = dataclasses.replace(v, name=label)


def _build(
    store: Store,
    builds: Sequence[TargetBuild],
    sink: pg.ProgressSink,
    base_lease: Lease,
    lease: Lease,
    executor: Callable[[], Executor],
    registries: Callable[[], Registries],
) -> list[tuple[_Planned, BuildResult]]:
    def warn(text: str) -> None:
        sink.emit(pg.Event("warning", "", "", message=f"WARNING: {text}"))

    hashes = FileHashes(store.meta)
    try:
        return _solve_all(
            store, builds, sink, base_lease, lease, executor, registries, hashes, warn
        )
    finally:
        hashes.flush()


def _solve_all(
    store: Store,
    builds: Sequence[TargetBuild],
    sink: pg.ProgressSink,
    base_lease: Lease,
    lease: Lease,
    executor: Callable[[], Executor],
    registries: Callable[[], Registries],
    hashes: FileHashes,
    warn: Callable[[str], None],
) -> list[tuple[_Planned, BuildResult]]:
    # One build's steps keep their plain identity; several builds' steps that read local
    # inputs are told apart by those inputs.
    identities = {b.name: _identity(b.options) for b in builds} if len(builds) > 1 else {}
    several = len(set(identities.values())) > 1
    graph = Graph()
    planned: dict[str, _Planned] = {}
    for build in builds:
        scope = identities[build.name] if several else ""
        try:
            planned[build.name] = _plan(
                store,
                build,
                graph,
                sink,
                base_lease,
                registries,
                planned,
                scope,
                hashes,
                prefix=len(builds) > 1,
            )
        except BaleError as exc:
            raise _named(exc, [build.name]) from None
    plans = list(planned.values())
    definition = BuildDefinition(graph, tuple(t for p in plans for t in p.targets))
    imported = ImportedCaches(store, lease)
    imported.load(tuple(s for b in builds for s in b.options.cache_from), registries, warn)
    mount_ids = _cache_mount_ids(definition)
    for mount_id in mount_ids:
        _restore_mount(store, imported, mount_id, warn)
    fetcher = Fetchers(store, [*(p.bases for p in plans), imported])
    cache = ChainedCache(BuildCache(store), imported)
    snapshots = Snapshotter(store.root / "snapshots")
    try:
        with snapshots.lease() as snapshot_lease:
            rootfs = Rootfs(store, snapshots, fetcher, snapshot_lease)
            rt = Runtime(store, snapshots, rootfs, sink, executor, plans[0].env, lease)
            scopes = {p.scope: rt.with_env(p.env) for p in reversed(plans)}
            engine = Engine(rt, cache, StepHistory(store.meta), scopes)
            try:
                solved = engine.solve(definition)
            except BaleError as exc:
                raise _named(exc, _owners(graph, plans, engine.failed)) from None
    finally:
        snapshots.close()
    # The image's layers from an imported cache are in the store before it is exported (a
    # layer a cache hit named arrives now); intermediate layers of imported hits never are
    # unless a step needs them. A pulled base's layers stay where they are until an output
    # needs them, as without a cache.
    for platform in solved.platforms:
        for layer in platform.layers:
            digest = layer.descriptor.digest
            if imported.provides(digest) and not store.content.exists(digest):
                imported.fetch(digest)
    cache.settle(store.content.exists)
    out = []
    offset = 0
    for plan in plans:
        count = len(plan.targets)
        result = dataclasses.replace(
            solved,
            platforms=solved.platforms[offset : offset + count],
            source_date_epoch=plan.env.source_date_epoch,
        )
        offset += count
        try:
            export_caches(
                store,
                result,
                plan.build.options.cache_to,
                lease=lease,
                fetcher=fetcher,
                registries=registries,
                mount_ids=mount_ids,
                warn=warn,
            )
        except BaleError as exc:
            raise _named(exc, [plan.build.name]) from None
        out.append((plan, result))
    return out


def _owners(graph: Graph, plans: Sequence[_Planned], vertex: str) -> list[str]:
    """The builds whose images need `vertex`."""
    if not vertex:
        return []
    owners = []
    for plan in plans:
        seen: set[str] = set()
        todo = [t.vertex for t in plan.targets]
        while todo:
            digest = todo.pop()
            if digest in seen:
                continue
            seen.add(digest)
            todo.extend(graph.vertices[digest].inputs)
        if vertex in seen:
            owners.append(plan.build.name)
    return owners


def _named(exc: BaleError, names: Sequence[str]) -> BaleError:
    """buildx's `target NAME: ...` in front of a build's failure (none for a lone build)."""
    names = [n for n in names if n]
    if not names:
        return exc
    word = "target" if len(names) == 1 else "targets"
    return exc.with_context(f"{word} {', '.join(names)}")


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
