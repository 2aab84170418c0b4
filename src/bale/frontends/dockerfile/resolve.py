"""Stage resolution: a Dockerfile plus one target platform → the stages to build, expanded.

`resolve()` is what the build engine calls, once per target platform. It returns a
`ResolvedBuild`:

* `stages` — only the stages the target needs (the target, `target`, is the last), in dependency
  order: every stage comes after the stages it reads (its FROM stage, `COPY --from`,
  `RUN --mount=from=`). Each `ResolvedStage` has its `index` and `name` in the Dockerfile,
  its `base` (`ImageBase(ref)`, `ScratchBase()` or `StageBase(index)`), its `platform` (the
  expanded `FROM --platform`, else its base stage's platform, else the target platform),
  its `steps`, and `config`: the image's runtime config after the last instruction (env,
  cmd/entrypoint with the shell prepended for shell form, workdir, user, labels, ports,
  volumes, stop signal, healthcheck, shell, onbuild).
* Each `Step` holds one typed instruction, expanded as BuildKit expands it (see `expand`),
  its `source` line range for error messages, and the state *before* it: `env` (the image
  env), `args` (the ARG values in scope, plus the predefined proxy args when given),
  `build_env` (what a RUN process gets and what expansion sees: the args, overridden by the
  image env, since ENV always wins over an ARG of the same name),
  `workdir` (absolute), `user` and `shell`. RUN commands are not expanded: run them with
  `build_env`. WORKDIR paths are made absolute. `from_stage` is the stage index a
  `COPY --from` refers to (None for the context or an image); `mount_stages` does the same
  for each RUN mount's `from=`.
* Triggers a base stage (or, with a `base_configs` resolver, a base image) registered with
  ONBUILD run first in the child stage, as in BuildKit.

Global ARGs (before the first FROM) are visible to FROM lines; inside a stage an `ARG NAME`
without a default takes the global value. `--build-arg` values override defaults. The
automatic TARGET*/BUILD* args are global.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from bale.errors import BaleError, DockerfileError, InvalidArgument, SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.instructions import evolve
from bale.frontends.dockerfile.parser import ParsedDockerfile, parse, suggest
from bale.frontends.dockerfile.shell import Lexer, ShellError
from bale.frontends.dockerfile.stages import Dockerfile, Stage, load
from bale.oci.config import RuntimeConfig
from bale.oci.platform import Platform
from bale.oci.reference import Reference

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Passed to RUN without an ARG declaration, and never reported as unused (BuildKit's list).
PROXY_ARGS = frozenset(
    f"{n}_PROXY" if upper else f"{n.lower()}_proxy"
    for n in ("HTTP", "HTTPS", "FTP", "NO", "ALL")
    for upper in (True, False)
)
# Build arguments that only steer the SBOM scanner: never in a step's environment (BuildKit's
# nonEnvArgs), so they neither reach RUN nor change its cache key.
SBOM_SCAN_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
_SPECIFIER = re.compile(r"[A-Za-z0-9_.-]+")
_PORT = re.compile(r"^([0-9]+)(?:-([0-9]+))?(?:/([A-Za-z]+))?$")


_SIGNALS = frozenset(
    (
        "ABRT",
        "ALRM",
        "BUS",
        "CHLD",
        "CLD",
        "CONT",
        "FPE",
        "HUP",
        "ILL",
        "INT",
        "IO",
        "IOT",
        "KILL",
        "PIPE",
        "POLL",
        "PROF",
        "PWR",
        "QUIT",
        "SEGV",
        "STKFLT",
        "STOP",
        "SYS",
        "TERM",
        "TRAP",
        "TSTP",
        "TTIN",
        "TTOU",
        "UNUSED",
        "URG",
        "USR1",
        "USR2",
        "VTALRM",
        "WINCH",
        "XCPU",
        "XFSZ",
    )
)


def _number(text: str, above: int) -> int | None:
    """An ASCII decimal (Go's Atoi: no other digits), or None; any number over `above` is
    `above + 1`, so a hostile thousand-digit value is never converted."""
    if not text or not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(above)):
        return above + 1
    return min(int(digits), above + 1)


def _valid_signal(text: str) -> bool:
    """A signal number, a name with or without SIG, or RTMIN+n / RTMAX-n (moby's rules)."""
    number = _number(text, 64)
    if number is not None:
        return 0 < number < 65
    name = text.upper().removeprefix("SIG")
    if name in _SIGNALS:
        return True
    match = re.fullmatch(r"RT(MIN|MAX)(?:([+-])([0-9]+))?", name)
    return match is not None


class BaseConfigs(Protocol):
    """Looks up a base image's runtime config (env, workdir, user, onbuild...), or None."""

    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None: ...


@dataclass(frozen=True)
class ImageBase:
    ref: str


@dataclass(frozen=True)
class ScratchBase:
    pass


@dataclass(frozen=True)
class StageBase:
    index: int


@dataclass(frozen=True)
class ContextBase:
    """A named context that is a directory: its files are the stage's root, with the empty
    image's config (BuildKit's `local:` context)."""

    name: str


Base = ImageBase | ScratchBase | StageBase | ContextBase


def context_key(name: str) -> str:
    """The name a `--build-context` is looked up by, as BuildKit: `docker.io/library/x:latest`,
    `x:latest` and `x` are one name."""
    try:
        ref = Reference.parse(name, default_tag=False)
    except BaleError:
        return name
    text = ref.familiar()
    return text.removesuffix(":latest")


@dataclass(frozen=True)
class Step:
    instruction: ins.Instruction
    env: tuple[tuple[str, str], ...]
    args: tuple[tuple[str, str], ...]
    build_env: tuple[tuple[str, str], ...]
    workdir: str
    user: str
    shell: tuple[str, ...]
    from_stage: int | None = None
    mount_stages: tuple[int | None, ...] = ()

    @property
    def source(self) -> SourceRange:
        return self.instruction.source


@dataclass(frozen=True)
class ResolvedStage:
    index: int
    name: str
    base: Base
    platform: Platform
    from_: ins.From
    steps: tuple[Step, ...]
    config: RuntimeConfig
    dependencies: tuple[int, ...] = ()
    # Variables referenced but never defined (only when the base env is known).
    undefined: tuple[tuple[str, SourceRange], ...] = ()
    # False when the base image's env was not known (no resolver), so `undefined` is empty.
    env_known: bool = True

    @property
    def display_name(self) -> str:
        return self.name or str(self.index)


@dataclass(frozen=True)
class ResolvedBuild:
    filename: str
    lines: tuple[str, ...]
    target_platform: Platform
    build_platform: Platform
    stages: tuple[ResolvedStage, ...]
    target_index: int
    unused_build_args: tuple[str, ...] = ()
    undefined_in_from: tuple[tuple[str, SourceRange], ...] = field(default=())
    # The global (before the first FROM) ARGs with their values, build-args applied.
    global_args: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> ResolvedStage:
        return self.stage(self.target_index)

    def stage(self, index: int) -> ResolvedStage:
        for stage in self.stages:
            if stage.index == index:
                return stage
        raise KeyError(index)


def platform_args(target: Platform, build: Platform) -> dict[str, str]:
    """The automatic platform ARGs, as BuildKit defines them."""
    return {
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
    }


def default_shell(platform: Platform) -> tuple[str, ...]:
    return ("cmd", "/S", "/C") if platform.os == "windows" else ("/bin/sh", "-c")


class _Resolver:
    def __init__(
        self,
        df: Dockerfile,
        target_platform: Platform,
        build_platform: Platform,
        build_args: Mapping[str, str],
        base_configs: BaseConfigs | None,
        contexts: Mapping[str, Base],
    ) -> None:
        self.df = df
        # --build-context NAME: what replaces a stage or a base image of that name.
        self.contexts = {context_key(k): v for k, v in contexts.items()}
        # Stages a named context replaces: their instructions are not run (as BuildKit).
        self.replaced: set[int] = set()
        self.lines = df.lines
        self.lexer = Lexer(df.parsed.escape)
        self.target_platform = target_platform
        self.build_platform = build_platform
        self.build_args = dict(build_args)
        self.base_configs = base_configs
        self.used: set[str] = set()
        self.meta: dict[str, str] = platform_args(target_platform, build_platform)
        # TARGETSTAGE is automatic too; resolve() gives it its value once the target is known.
        self.meta_declared: set[str] = {*self.meta, "TARGETSTAGE"}
        self.undefined_in_from: list[tuple[str, SourceRange]] = []
        self.bases: list[Base] = []
        self.platforms: list[Platform] = []
        self.froms: list[ins.From] = []
        self.done: dict[int, ResolvedStage] = {}

    def error(self, message: str, source: SourceRange, hint: str = "") -> DockerfileError:
        return DockerfileError(message, source=source, lines=self.lines, hint=hint)

    def expand_meta(self, word: str, inst: ins.Instruction) -> str:
        try:
            result = self.lexer.expand(word, self.meta)
        except ShellError as exc:
            raise self.error(f'failed to process "{word}": {exc}', inst.source) from None
        for name in result.unmatched:
            if name not in self.meta_declared:
                self.undefined_in_from.append((name, inst.source))
        return result.value

    def global_args(self) -> None:
        for arg in self.df.meta_args:
            for d in arg.args:
                if d.key in self.build_args:
                    self.meta[d.key] = self.build_args[d.key]
                    self.used.add(d.key)
                elif d.value is not None:
                    self.meta[d.key] = self.expand_meta(d.value, arg)
                elif d.key not in self.meta_declared:
                    self.meta.pop(d.key, None)
                self.meta_declared.add(d.key)

    def bases_and_platforms(self) -> None:
        names: dict[str, int] = {}
        for stage in self.df.stages:
            frm = stage.from_
            image = self.expand_meta(frm.image, frm)
            if image == "":
                raise self.error(f"base name ({frm.image}) should not be blank", frm.source)
            platform_text = self.platform(frm)
            base: Base
            if stage.name and context_key(stage.name) in self.contexts:
                base = self.contexts[context_key(stage.name)]
                self.replaced.add(stage.index)
            elif image.lower() in names:
                base = StageBase(names[image.lower()])
            elif context_key(image) in self.contexts:
                base = self.contexts[context_key(image)]
            elif image == "scratch":
                base = ScratchBase()
            else:
                base = ImageBase(image)
            if platform_text:
                platform = self.parse_platform(frm, platform_text)
            elif isinstance(base, StageBase):
                platform = self.platforms[base.index]
            else:
                platform = self.target_platform
            self.bases.append(base)
            self.platforms.append(platform)
            self.froms.append(replace(frm, image=image, platform=platform_text))
            if stage.name:
                names[stage.name] = stage.index

    def platform(self, frm: ins.From) -> str:
        if not frm.platform:
            return ""
        before = len(self.undefined_in_from)
        text = self.expand_meta(frm.platform, frm)
        if text == "":
            raise self.error(
                f"empty platform value from expression {frm.platform}" + self.suggest_meta(before),
                frm.source,
            )
        return text

    def suggest_meta(self, since: int) -> str:
        # BuildKit's wrapSuggestAny: the first undefined name close to a declared one.
        for name, _ in self.undefined_in_from[since:]:
            hint = suggest(name, sorted(self.meta), case_sensitive=True)
            if hint:
                return hint
        return ""

    def parse_platform(self, frm: ins.From, text: str) -> Platform:
        bad = next((p for p in text.split("/") if not _SPECIFIER.fullmatch(p)), None)
        hint = self.suggest_meta(0)
        if bad is not None:
            # containerd's wording, which BuildKit passes on.
            raise self.error(
                f'failed to parse platform {frm.platform}: "{bad}" is an invalid component of '
                f'"{text}": platform specifier component must match "^[A-Za-z0-9_.-]+$": '
                f"invalid argument{hint}",
                frm.source,
            )
        try:
            return Platform.parse(text)
        except InvalidArgument as exc:
            raise self.error(
                f"failed to parse platform {text}: {exc.message}{hint}", frm.source
            ) from None

    def stage_ref(self, ref: str, inst: ins.Instruction) -> int | None:
        """A `--from` value as a stage index, or None for an image reference."""
        stage = self.df.stage_by_name(ref)
        if stage is not None:
            return stage.index
        index = _number(ref, len(self.df.stages))
        if index is not None:
            if index >= len(self.df.stages):
                raise self.error(
                    f"invalid stage index {ref}",
                    inst.source,
                    hint=f"the Dockerfile has {len(self.df.stages)} stages",
                )
            return index
        return None

    def base_config(self, stage: Stage) -> tuple[RuntimeConfig, bool]:
        base = self.bases[stage.index]
        platform = self.platforms[stage.index]
        if isinstance(base, StageBase):
            parent = self.done[base.index]
            return parent.config, parent.env_known
        if isinstance(base, ScratchBase | ContextBase):
            # BuildKit's empty image: WorkingDir /, and PATH except on Windows.
            env = () if platform.os == "windows" else (f"PATH={DEFAULT_PATH}",)
            return RuntimeConfig(env=env, working_dir="/"), True
        if self.base_configs is not None:
            try:
                found = self.base_configs.base_config(base.ref, platform)
            except DockerfileError:
                raise
            except BaleError as exc:
                # A base that cannot be had is reported at its FROM line, as BuildKit does.
                raise self.error(str(exc), stage.from_.source, hint=exc.hint) from None
            if found is not None:
                # As BuildKit: a base without PATH (an imported rootfs) gets the default one,
                # so `ENV PATH=/opt/bin:$PATH` and RUN find the usual commands.
                if platform.os != "windows" and not any(e.startswith("PATH=") for e in found.env):
                    found = replace(found, env=(f"PATH={DEFAULT_PATH}", *found.env))
                return found, True
        return RuntimeConfig(), False

    def onbuild_triggers(self, config: RuntimeConfig, stage: Stage) -> list[ins.Instruction]:
        out: list[ins.Instruction] = []
        for trigger in config.on_build:
            try:
                parsed = parse(trigger, self.df.filename)
            except DockerfileError as exc:
                raise self.error(
                    f"failed to parse ONBUILD trigger {trigger!r}: {exc.message}",
                    stage.from_.source,
                ) from None
            for node in parsed.nodes:
                inst = ins.from_node(node, parsed)
                # Triggers run at the child's FROM line, so errors point there.
                out.append(evolve(inst, source=stage.from_.source))
        return out

    def resolve_stage(self, stage: Stage) -> ResolvedStage:
        # The folding of one stage's instructions lives in its own module (it needs this one).
        from bale.frontends.dockerfile.stage_fold import StageState

        platform = self.platforms[stage.index]
        config, env_known = self.base_config(stage)
        if stage.index in self.replaced:
            # The context is the stage as it stands: nothing of the stage's runs, no triggers.
            return StageState(self, stage, platform, config, env_known).finish()
        body = list(stage.instructions)
        if config.on_build:
            body = self.onbuild_triggers(config, stage) + body
            config = replace(config, on_build=())
        state = StageState(self, stage, platform, config, env_known)
        for inst in body:
            state.apply(inst)
        return state.finish()

    def order(self, target: int) -> list[int]:
        """Depth-first post-order from the target: dependencies before dependents.

        Walked with an explicit stack: a hostile file of a thousand chained stages must not
        exhaust the interpreter's."""
        out: list[int] = []
        visiting: list[int] = []
        seen: set[int] = set()
        # Frames: (stage, ENTER, None); (stage, RESOLVE, None) once its base is done;
        # (stage, DEPS, what is left of its dependencies).
        enter, resolve, visit_deps = 0, 1, 2
        stack: list[tuple[int, int, Iterator[int] | None]] = [(target, enter, None)]
        while stack:
            index, phase, deps = stack.pop()
            if phase == enter:
                if index in seen:
                    continue
                if index in visiting:
                    cycle = [*visiting[visiting.index(index) :], index]
                    names = " -> ".join(self.df.stages[i].display_name for i in cycle)
                    raise self.error(
                        "circular dependency detected on stage: "
                        f"{self.df.stages[index].display_name}",
                        self.df.stages[index].from_.source,
                        hint=f"stages depend on each other: {names}",
                    )
                visiting.append(index)
                base = self.bases[index]
                stack.append((index, resolve, None))
                if index not in self.done and isinstance(base, StageBase):
                    stack.append((base.index, enter, None))
                continue
            if phase == resolve:
                if index not in self.done:
                    self.done[index] = self.resolve_stage(self.df.stages[index])
                base = self.bases[index]
                deps = iter(
                    [
                        dep
                        for dep in self.done[index].dependencies
                        if not (isinstance(base, StageBase) and dep == base.index)
                    ]
                )
            assert deps is not None
            dep = next(deps, None)
            if dep is not None:
                stack.append((index, visit_deps, deps))
                stack.append((dep, enter, None))
                continue
            visiting.pop()
            seen.add(index)
            out.append(index)
        return out


_BUILTIN_FRONTENDS = ("docker/dockerfile", "docker/dockerfile-upstream")


def _builtin_syntax(df: Dockerfile) -> None:
    """`# syntax=` may name only the Dockerfile frontend, which is built in; another frontend
    image cannot be run here (BuildKit fails at that line when it cannot have it)."""
    for key, value, line in df.parsed.directives:
        if key != "syntax":
            continue
        name = value.split("@", 1)[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        name = name.removeprefix("docker.io/")
        if name not in _BUILTIN_FRONTENDS:
            raise DockerfileError(
                f"failed to solve: unsupported frontend {value}: only the Dockerfile frontend "
                "(docker/dockerfile) is built in",
                source=SourceRange(df.filename, line, line),
                lines=df.lines,
                hint="remove the syntax directive, or use # syntax=docker/dockerfile:1",
            )


def _copies_from_earlier_stages(r: _Resolver, stage: ResolvedStage) -> None:
    """BuildKit builds stages in file order: COPY --from a later stage is refused (once no
    cycle was found, which is reported first)."""
    for step in stage.steps:
        inst = step.instruction
        later = step.from_stage is not None and step.from_stage > stage.index
        if isinstance(inst, ins.Copy) and later:
            raise r.error(
                f'cannot copy from stage "{inst.from_}", it needs to be defined before '
                f'current stage "{stage.name or f"stage-{stage.index}"}"',
                inst.source,
                hint=f"move the stage {inst.from_!r} above this one",
            )


def undefined_in_from(
    df: Dockerfile,
    *,
    target_platform: Platform,
    build_platform: Platform | None = None,
    build_args: Mapping[str, str] | None = None,
) -> tuple[tuple[str, SourceRange], ...]:
    """Undeclared names used in FROM lines, also those before a FROM that fails."""
    r = _Resolver(
        df, target_platform, build_platform or target_platform, build_args or {}, None, {}
    )
    try:
        r.global_args()
        r.bases_and_platforms()
    except DockerfileError:
        pass
    return tuple(r.undefined_in_from)


def resolve(
    dockerfile: ParsedDockerfile | Dockerfile | str,
    *,
    target_platform: Platform,
    build_platform: Platform | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    base_configs: BaseConfigs | None = None,
    filename: str = "Dockerfile",
    all_stages: bool = False,
    contexts: Mapping[str, Base] | None = None,
) -> ResolvedBuild:
    """Resolve the stages `target` (default: the last stage) needs for one target platform.

    Raises DockerfileError (with the Dockerfile lines) for parse errors, expansion errors,
    an unknown target, an invalid stage index and dependency cycles. `all_stages` resolves
    every stage (still in dependency order), as the checks need. `contexts` maps each
    `--build-context` name to what it stands for: a stage of that name is replaced by it (its
    instructions dropped), and a FROM of that name uses it.
    """
    df = load(dockerfile, filename)
    _builtin_syntax(df)
    build = build_platform or target_platform
    r = _Resolver(df, target_platform, build, build_args or {}, base_configs, contexts or {})
    if target:
        stage = df.stage_by_name(target)
        if stage is None:
            names = [s.name for s in df.stages if s.name]
            from bale.frontends.dockerfile.parser import suggest

            raise DockerfileError(
                f'target stage "{target}" could not be found{suggest(target, names)}',
                lines=df.lines,
                hint=("stages in this Dockerfile: " + ", ".join(names)) if names else "",
            )
        target_index = stage.index
    else:
        target_index = len(df.stages) - 1
    # BuildKit's TARGETSTAGE: the target's name, "default" for an unnamed last stage.
    r.meta["TARGETSTAGE"] = df.stages[target_index].name or "default"
    r.global_args()
    r.bases_and_platforms()
    order = r.order(target_index)
    if all_stages:
        for index in range(len(df.stages)):
            order.extend(i for i in r.order(index) if i not in order)
    stages = tuple(r.done[i] for i in order)
    for done in stages:
        _copies_from_earlier_stages(r, done)
    unused = sorted(
        k
        for k in r.build_args
        if k not in r.used and k not in PROXY_ARGS and not k.startswith("BUILDKIT_")
    )
    declared = {d.key for arg in df.meta_args for d in arg.args}
    return ResolvedBuild(
        df.filename,
        df.lines,
        target_platform,
        build,
        stages,
        target_index,
        tuple(unused),
        tuple(r.undefined_in_from),
        tuple((k, v) for k, v in r.meta.items() if k in declared),
    )
