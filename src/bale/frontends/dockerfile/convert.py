"""Resolved Dockerfile stages → one build graph over every target platform (BuildKit's
dockerfile2llb). Each RUN, COPY/ADD and WORKDIR becomes a typed op; config-only steps only
add history. Bases are asked of an `ImageResolver`, so this module does no I/O.

    convert(resolved_per_platform, resolver, options) -> BuildDefinition

Several builds (bake's targets) convert into one graph: `options.scope` keeps the steps that
read this build's local inputs apart, and `options.linked` names other builds' results a
named context stands for (`target:NAME`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bale.errors import BaleError, DockerfileError, InvalidArgument, SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.history import HISTORY_COMMENT, created_by, proxy_env
from bale.frontends.dockerfile.mounts import Mount
from bale.frontends.dockerfile.resolve import (
    SBOM_SCAN_ARGS,
    ContextBase,
    ImageBase,
    ResolvedBuild,
    ResolvedStage,
    ScratchBase,
    StageBase,
    Step,
)
from bale.frontends.dockerfile.run import run_command
from bale.frontends.graph import (
    BindMountSpec,
    BuildDefinition,
    CacheMountSpec,
    CopyOp,
    ExecOp,
    Graph,
    ImageOp,
    InlineFile,
    Location,
    Material,
    MkdirOp,
    MountSpec,
    PlatformTarget,
    ScratchOp,
    SecretMountSpec,
    SSHMountSpec,
    TmpfsMountSpec,
    UrlSource,
    Vertex,
)
from bale.frontends.graph.definition import ImageResolver, ResolvedImage
from bale.frontends.graph.modes import parse_chmod
from bale.oci.config import HistoryEntry, ImageConfig, RuntimeConfig
from bale.oci.platform import Platform

_COUNTED = (ins.Run, ins.Copy, ins.Workdir)


@dataclass(frozen=True)
class ConvertOptions:
    labels: tuple[tuple[str, str], ...] = ()  # --label, over the Dockerfile's
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    network: str = "default"  # --network: RUN's default
    extra_hosts: tuple[tuple[str, str], ...] = ()  # --add-host
    shm_size: int = 0  # --shm-size
    ulimits: tuple[tuple[str, int, int], ...] = ()  # --ulimit
    hostname: str = ""  # BUILDKIT_SANDBOX_HOSTNAME: RUN's host name
    local_contexts: frozenset[str] = field(default_factory=frozenset)  # named directories
    # Named contexts that are docker-image://scratch: the empty filesystem.
    scratch_contexts: frozenset[str] = field(default_factory=frozenset)
    # Platforms RUN executes natively; other platforms' steps are labelled "emulated".
    native: frozenset[str] = field(default_factory=frozenset)
    # The identity of this build's contexts, secrets and ssh in a graph of several builds.
    scope: str = ""
    # Named contexts that are another build's result: (name, platform) -> that result.
    linked: Mapping[tuple[str, str], PlatformTarget] = field(default_factory=dict)


def convert(
    builds: list[ResolvedBuild],
    resolver: ImageResolver,
    options: ConvertOptions,
    graph: Graph | None = None,
) -> BuildDefinition:
    """`graph`: the graph to add to (one shared by several builds); a new one when None."""
    graph = Graph() if graph is None else graph
    multi = len(builds) > 1
    targets = [_Platform(graph, build, resolver, options, multi).convert() for build in builds]
    return BuildDefinition(graph, tuple(targets))


def platform_label(stage: Platform, target: Platform) -> str:
    """A step's platform as BuildKit labels it: `linux/amd64`, or `linux/amd64->arm64` for a
    stage on another platform than the build's target (FROM --platform=$BUILDPLATFORM)."""
    if target.os != stage.os:
        return f"{stage}->{target}"
    if (target.architecture, target.variant) != (stage.architecture, stage.variant):
        arch = target.architecture + (f"/{target.variant}" if target.variant else "")
        return f"{stage}->{arch}"
    return str(stage)


def dest_path(workdir: str, dest: str) -> str:
    """Docker joins a relative destination to WORKDIR; a trailing slash means a directory."""
    slash = dest.endswith("/") or dest in (".", "")
    full = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    full = posixpath.normpath(full)
    return full.rstrip("/") + "/" if slash else full


def _counted_steps(stage: ResolvedStage) -> int:
    # As BuildKit: FROM counts only for a base that is neither scratch nor another stage.
    own_base = not isinstance(stage.base, ScratchBase | StageBase)
    return own_base + sum(isinstance(s.instruction, _COUNTED) for s in stage.steps)


@dataclass(frozen=True)
class _StageOut:
    vertex: str
    history: tuple[HistoryEntry, ...]
    history_vertices: tuple[str, ...]


class _Platform:
    """One target platform's stages, folded into the shared graph in dependency order."""

    def __init__(
        self,
        graph: Graph,
        build: ResolvedBuild,
        resolver: ImageResolver,
        options: ConvertOptions,
        multi: bool = False,
    ) -> None:
        self.graph = graph
        self.multi = multi  # several platforms asked for: step names say which
        self.build = build
        self.resolver = resolver
        self.options = options
        self.stages: dict[int, _StageOut] = {}
        self.materials: list[Material] = []
        self.step_id = ""

    def error(self, exc: BaleError, source: SourceRange) -> DockerfileError:
        """A failure of a step's sources, reported at the step's Dockerfile lines."""
        if isinstance(exc, DockerfileError):
            return exc
        return DockerfileError(str(exc), source=source, lines=self.build.lines, hint=exc.hint)

    def prefix(self, stage: ResolvedStage, n: int, total: int) -> str:
        """BuildKit's step prefix: `[base 2/3]`, with the platform first when several were
        asked for (`[linux/arm64 base 2/3]`); none in a stage that counts no step."""
        if total == 0:
            return ""
        platform = platform_label(stage.platform, self.build.target_platform)
        name = stage.name or f"stage-{stage.index}"
        count = f"{n:>{len(str(total))}}/{total}"
        return f"[{platform} {name} {count}]" if self.multi else f"[{name} {count}]"

    def location(self, source: SourceRange) -> Location:
        return Location(source, self.build.lines)

    def convert(self) -> PlatformTarget:
        for stage in self.build.stages:
            self.stages[stage.index] = self.stage(stage)
        target = self.build.target
        out = self.stages[target.index]
        config = ImageConfig(
            platform=target.platform,
            config=_with_labels(target.config, self.options.labels),
            history=out.history,
        )
        scan_stages = tuple(
            (stage.name or f"stage-{stage.index}", self.stages[stage.index].vertex)
            for stage in self.build.stages
            if stage.index != target.index
            and _scan_enabled(self.build, stage, "BUILDKIT_SBOM_SCAN_STAGE")
        )
        return PlatformTarget(
            target.platform,
            out.vertex,
            config,
            out.history_vertices,
            tuple(self.materials),
            scan_stages,
            _scan_enabled(self.build, target, "BUILDKIT_SBOM_SCAN_CONTEXT"),
        )

    def stage(self, stage: ResolvedStage) -> _StageOut:
        fs, history, vertices = self.base(stage)
        total = _counted_steps(stage)
        label = stage.name or f"stage-{stage.index}"
        n = total - sum(isinstance(s.instruction, _COUNTED) for s in stage.steps)
        for position, step in enumerate(stage.steps, 1):
            n += isinstance(step.instruction, _COUNTED)
            self.step_id = f"{stage.platform}|{label}|{position}"
            fs, entry = self.step(stage, step, fs, self.prefix(stage, n, total))
            history += (entry,)
            vertices += (fs,)
        return _StageOut(fs, history, vertices)

    def base(self, stage: ResolvedStage) -> tuple[str, tuple[HistoryEntry, ...], tuple[str, ...]]:
        base = stage.base
        if isinstance(base, StageBase):
            parent = self.stages[base.index]
            return parent.vertex, parent.history, parent.history_vertices
        if isinstance(base, ScratchBase):
            return self.scratch(), (), ()
        if isinstance(base, ContextBase):
            return self.context_root(base.name, stage), (), ()
        assert isinstance(base, ImageBase)
        linked = self.linked(base.ref, stage, stage.from_.source)
        if linked is not None:
            return linked.vertex, linked.config.history, linked.history_vertices
        image = self.image(base.ref, stage, stage.from_.source)
        vertex = self.image_vertex(image, stage, self.prefix(stage, 1, _counted_steps(stage)))
        return vertex, image.config.history, ("",) * len(image.config.history)

    def scratch(self) -> str:
        return self.graph.add(Vertex.make(ScratchOp(), name="FROM scratch"))

    def context_root(self, name: str, stage: ResolvedStage) -> str:
        """A directory context as a filesystem: its files (less its .dockerignore's) at /."""
        op = CopyOp(sources=(".",), dest="/", context=name)
        v = Vertex.make(
            op,
            (self.scratch(),),
            name=f"[context {name}] load from client",
            platform=str(stage.platform),
            scope=self.options.scope,
        )
        return self.graph.add(v)

    def linked(self, ref: str, stage: ResolvedStage, source: SourceRange) -> PlatformTarget | None:
        """Another build's result for this stage's platform, when `ref` names one (a build
        of one platform stands for every platform)."""
        results = [t for (name, _), t in self.options.linked.items() if name == ref]
        if not results:
            return None
        # A single-platform result feeds every platform (as buildx uses it).
        found = results[0] if len(results) == 1 else None
        found = self.options.linked.get((ref, str(stage.platform)), found)
        if found is None:
            raise DockerfileError(
                f"context {ref!r} is a target that is not built for {stage.platform}",
                source=source,
                lines=self.build.lines,
                hint="add the platform to that target's platforms",
            )
        for material in found.materials:
            if material not in self.materials:
                self.materials.append(material)
        return found

    def image(self, ref: str, stage: ResolvedStage, source: SourceRange) -> ResolvedImage:
        try:
            image = self.resolver.image(ref, stage.platform)
        except BaleError as exc:
            raise self.error(exc, source) from None
        material = Material(image.ref, image.resolved or str(image.manifest), stage.platform)
        if material not in self.materials:
            self.materials.append(material)
        return image

    def image_vertex(self, image: ResolvedImage, stage: ResolvedStage, label: str) -> str:
        op = ImageOp(image.ref, image.manifest, stage.platform, image.resolved)
        v = Vertex.make(
            op,
            name=_named(label, f"FROM {image.ref}"),
            platform=str(stage.platform),
        )
        return self.graph.add(v)

    def ignore_cache(self, stage: ResolvedStage) -> bool:
        return self.options.no_cache or bool(
            stage.name and stage.name in self.options.no_cache_filter
        )

    def step(
        self, stage: ResolvedStage, step: Step, fs: str, label: str
    ) -> tuple[str, HistoryEntry]:
        inst = step.instruction
        entry = HistoryEntry(created_by=created_by(step), comment=HISTORY_COMMENT)
        if isinstance(inst, ins.Run):
            return self.run(stage, step, inst, fs, label), entry
        if isinstance(inst, ins.Copy):
            return self.copy(stage, step, inst, fs, label), entry
        if isinstance(inst, ins.Workdir):
            path = posixpath.normpath(posixpath.join(step.workdir or "/", inst.path))
            if path != "/":
                # As BuildKit: WORKDIR makes its directory (a layer only if it was missing).
                v = Vertex.make(
                    MkdirOp(path, step.user),
                    (fs,),
                    name=_named(label, inst.original.strip()),
                    platform=str(stage.platform),
                    location=self.location(inst.source),
                    ignore_cache=self.ignore_cache(stage),
                    step=self.step_id,
                )
                return self.graph.add(v), entry
        return fs, replace(entry, empty_layer=True)

    def run(self, stage: ResolvedStage, step: Step, inst: ins.Run, fs: str, label: str) -> str:
        command = run_command(step)
        inputs = [fs]
        mounts = [
            self.mount(stage, inst, m, index, step, inputs) for index, m in enumerate(inst.mounts)
        ]
        network = inst.network or self.options.network
        op = ExecOp(
            argv=command.argv,
            env=tuple(f"{k}={v}" for k, v in step.build_env),
            cwd=step.workdir or "/",
            user=step.user,
            platform=stage.platform,
            network="none" if network == "none" else "host" if network == "host" else "default",
            security="insecure" if inst.security == "insecure" else "sandbox",
            mounts=tuple(mounts),
            files=tuple(InlineFile(f.path, f.data.encode(), f.mode) for f in command.files),
            proxy_env=proxy_env(step),
            extra_hosts=self.options.extra_hosts,
            shm_size=self.options.shm_size,
            ulimits=self.options.ulimits,
            hostname=self.options.hostname,
        )
        if str(stage.platform) not in self.options.native:
            # Steps that run a process show how: "[linux/arm64 emulated build 2/4]".
            platform = f"[{stage.platform} "
            label = (
                label.replace(platform, f"{platform}emulated ", 1)
                if self.multi
                else label.replace("[", f"{platform}emulated ", 1)
            )
        local = any(
            isinstance(m, SecretMountSpec | SSHMountSpec)
            or (isinstance(m, BindMountSpec) and m.input is None)
            for m in mounts
        )
        v = Vertex.make(
            op,
            tuple(inputs),
            name=_named(label, f"RUN {inst.original[4:].strip()}"),
            platform=str(stage.platform),
            location=self.location(inst.source),
            ignore_cache=self.ignore_cache(stage),
            step=self.step_id,
            scope=self.options.scope if local else "",
        )
        return self.graph.add(v)

    def mount(
        self,
        stage: ResolvedStage,
        inst: ins.Run,
        m: Mount,
        index: int,
        step: Step,
        inputs: list[str],
    ) -> MountSpec:
        if m.type == "cache":
            sharing = m.sharing if m.sharing in ("shared", "private", "locked") else "shared"
            return CacheMountSpec(
                target=m.target,
                id=m.id or m.target,
                sharing=sharing,  # type: ignore[arg-type]  # narrowed by the test above
                readonly=m.readonly,
                mode=m.mode if m.mode is not None else 0o755,
                uid=m.uid or 0,
                gid=m.gid or 0,
            )
        if m.type == "tmpfs":
            return TmpfsMountSpec(target=m.target, size=m.size or 0)
        if m.type == "secret":
            return SecretMountSpec(
                id=m.id or os.path.basename(m.target),
                target=m.target,
                env=m.env,
                mode=m.mode if m.mode is not None else 0o400,
                uid=m.uid or 0,
                gid=m.gid or 0,
                required=m.required,
            )
        if m.type == "ssh":
            return SSHMountSpec(
                id=m.id or "default",
                target=m.target,
                mode=m.mode if m.mode is not None else 0o600,
                uid=m.uid or 0,
                gid=m.gid or 0,
                required=m.required,
            )
        stage_index = step.mount_stages[index] if index < len(step.mount_stages) else None
        if stage_index is not None:
            inputs.append(self.stages[stage_index].vertex)
            return BindMountSpec(m.target, m.source, input=len(inputs) - 1, readonly=m.readonly)
        if m.from_ and m.from_ in self.options.local_contexts:
            return BindMountSpec(m.target, m.source, context=m.from_, readonly=m.readonly)
        linked = self.linked(m.from_, stage, inst.source) if m.from_ else None
        if linked is not None:
            inputs.append(linked.vertex)
            return BindMountSpec(m.target, m.source, input=len(inputs) - 1, readonly=m.readonly)
        if m.from_:
            image = self.image(m.from_, stage, inst.source)
            inputs.append(self.image_vertex(image, stage, f"RUN --mount from={m.from_}"))
            return BindMountSpec(m.target, m.source, input=len(inputs) - 1, readonly=m.readonly)
        return BindMountSpec(m.target, m.source, readonly=m.readonly)

    def copy(self, stage: ResolvedStage, step: Step, inst: ins.Copy, fs: str, label: str) -> str:
        urls = [s for s in inst.sources if s.startswith(("http://", "https://"))]
        if urls and not inst.is_add:
            raise DockerfileError(
                "source can't be a URL for COPY",
                source=inst.source,
                lines=self.build.lines,
                hint="use ADD to download a URL",
            )
        try:
            parse_chmod(inst.chmod)
            if inst.checksum:
                _check_checksum(inst, urls)
        except InvalidArgument as exc:
            raise self.error(exc, inst.source) from None
        inputs: tuple[str, ...] = (fs,)
        context = ""
        if step.from_stage is not None:
            inputs = (fs, self.stages[step.from_stage].vertex)
        elif inst.from_ in self.options.local_contexts:
            context = inst.from_
        elif inst.from_ and inst.from_ in self.options.scratch_contexts:
            inputs = (fs, self.scratch())
        elif inst.from_ and (linked := self.linked(inst.from_, stage, inst.source)) is not None:
            inputs = (fs, linked.vertex)
        elif inst.from_:
            image = self.image(inst.from_, stage, inst.source)
            inputs = (fs, self.image_vertex(image, stage, "COPY --from"))
        op = CopyOp(
            sources=tuple(s for s in inst.sources if s not in urls),
            dest=dest_path(step.workdir, inst.dest),
            chown=inst.chown,
            chmod=inst.chmod or ("600" if urls else ""),
            add=inst.is_add and inst.unpack is not False,
            contents=tuple(InlineFile(c.path, c.data.encode(), 0o644) for c in inst.contents),
            urls=tuple(UrlSource(u, inst.checksum) for u in urls),
            parents=inst.parents,
            excludes=inst.excludes,
            link=inst.link,
            context=context,
            from_input=len(inputs) > 1,
            unpack_urls=inst.unpack is True,
        )
        v = Vertex.make(
            op,
            inputs,
            name=_named(label, inst.original.strip()),
            platform=str(stage.platform),
            location=self.location(inst.source),
            ignore_cache=self.ignore_cache(stage),
            step=self.step_id,
            scope="" if op.from_input else self.options.scope,
        )
        return self.graph.add(v)


def _check_checksum(inst: ins.Copy, urls: list[str]) -> None:
    """ADD --checksum as BuildKit takes it: one HTTP(S) source, an `algorithm:hex` digest
    of an algorithm it knows (go-digest's words)."""
    if len(inst.sources) != 1:
        raise InvalidArgument("checksum can't be specified for multiple sources")
    if not urls:
        raise InvalidArgument(
            "checksum requires HTTP(S) or Git sources",
            hint="compare a local file's digest in a RUN step instead",
        )
    algorithm, colon, hexpart = inst.checksum.partition(":")
    if not colon or not algorithm or not hexpart:
        raise InvalidArgument(
            f"invalid checksum digest format: {inst.checksum}", hint="use sha256:<hex>"
        )
    sizes = {"sha256": 64, "sha384": 96, "sha512": 128}
    if algorithm not in sizes:
        raise InvalidArgument(
            f"unsupported digest algorithm: {inst.checksum}", hint="use sha256, sha384 or sha512"
        )
    if len(hexpart) != sizes[algorithm] or not all(c in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(
            f"invalid checksum digest length: {inst.checksum}", hint="use sha256:<hex>"
        )


def _scan_enabled(build: ResolvedBuild, stage: ResolvedStage, name: str) -> bool:
    """BuildKit's rule for the SBOM scan arguments: the global ARG's value, overridden by the
    stage's own ARG; `true`/`false`, or a comma list of the stage names it enables. Only
    declared ARGs count (a --build-arg sets their value, it does not declare them)."""
    assert name in SBOM_SCAN_ARGS
    value = dict(build.global_args).get(name)
    for step in stage.steps:
        if isinstance(step.instruction, ins.Arg):
            for d in step.instruction.args:
                if d.key == name and d.value is not None:
                    value = d.value
    if value is None:
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):  # Go's strconv.ParseBool
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return bool(stage.name) and stage.name in value.split(",")


def _named(prefix: str, text: str) -> str:
    return f"{prefix} {text}" if prefix else text


def _with_labels(config: RuntimeConfig, labels: tuple[tuple[str, str], ...]) -> RuntimeConfig:
    if not labels:
        return config
    merged = dict(config.labels)
    merged.update(labels)
    return replace(config, labels=tuple(sorted(merged.items())))
