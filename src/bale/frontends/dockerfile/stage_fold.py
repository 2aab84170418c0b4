"""One stage's instructions folded in order: the state before each step (env, args, workdir,
user, shell), each instruction expanded as BuildKit expands it, and the image config after
the last one. `resolve._Resolver` drives it, one `StageState` per stage."""

from __future__ import annotations

import posixpath
from dataclasses import replace

from bale.errors import SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.expand import Expander, expand_instruction
from bale.frontends.dockerfile.instructions import evolve
from bale.frontends.dockerfile.parser import suggest
from bale.frontends.dockerfile.resolve import (
    _PORT,
    PROXY_ARGS,
    SBOM_SCAN_ARGS,
    ResolvedStage,
    StageBase,
    Step,
    _number,
    _Resolver,
    _valid_signal,
    default_shell,
)
from bale.frontends.dockerfile.shell import ShellError
from bale.frontends.dockerfile.stages import Stage
from bale.oci.config import Healthcheck, RuntimeConfig
from bale.oci.platform import Platform


class StageState:
    """The mutable state while one stage's instructions are folded (kept in one place)."""

    def __init__(
        self, r: _Resolver, stage: Stage, platform: Platform, config: RuntimeConfig, env_known: bool
    ) -> None:
        self.r = r
        self.stage = stage
        self.platform = platform
        self.config = config
        self.env_known = env_known
        # The env and labels change often; they are kept as dicts and the tuples each Step
        # records are cached until the next change (large files stay linear).
        self.image_env: dict[str, str] = config.env_map()
        self.labels: dict[str, str] = dict(config.labels)
        self.build_env: dict[str, str] = dict(self.image_env)
        self.args: dict[str, str] = {k: v for k, v in r.build_args.items() if k in PROXY_ARGS}
        self._cache: tuple[tuple[tuple[str, str], ...], ...] | None = None
        self.declared: set[str] = set()
        self.shell = config.shell or default_shell(platform)
        self.cmd_set = False
        self.steps: list[Step] = []
        self.deps: set[int] = set()
        base = r.bases[stage.index]
        if isinstance(base, StageBase):
            self.deps.add(base.index)
        self.undefined: list[tuple[str, SourceRange]] = []
        # With the base's env unknown, a name is surely undefined only where it is used
        # before this stage declares it.
        self.unsure: list[tuple[str, SourceRange]] = []

    def workdir(self) -> str:
        return self.config.working_dir or "/"

    def surely_undefined(self) -> tuple[tuple[str, SourceRange], ...]:
        # The base may define what the stage does not: only a name the stage declares later,
        # or one within two edits of a name it declares (a typo), is reported.
        known = sorted(self.declared | set(self.build_env))
        return tuple(
            (n, rng)
            for n, rng in self.unsure
            if n in self.declared or n in self.build_env or suggest(n, known, case_sensitive=True)
        )

    def record(
        self,
        inst: ins.Instruction,
        from_stage: int | None = None,
        mount_stages: tuple[int | None, ...] = (),
    ) -> None:
        if self._cache is None:
            self._cache = (
                tuple(self.image_env.items()),
                tuple(self.args.items()),
                tuple(self.build_env.items()),
            )
        env, args, build_env = self._cache
        self.steps.append(
            Step(
                inst,
                env,
                args,
                build_env,
                self.workdir(),
                self.config.user,
                self.shell,
                from_stage,
                mount_stages,
            )
        )

    def apply(self, inst: ins.Instruction) -> None:
        if isinstance(inst, ins.Arg):
            self.apply_arg(inst)
            return
        ex = Expander(self.r.lexer, self.build_env, inst, self.r.lines)
        expanded = expand_instruction(inst, ex)
        # With the base's env unknown, `ENV X=$X:…` extends the base's X, and PATH is there.
        extended = {p.key for p in inst.pairs} if isinstance(inst, ins.Env) else set()
        for name in ex.unmatched:
            if name not in self.declared and name not in self.build_env:
                if self.env_known:
                    self.undefined.append((name, inst.source))
                elif name not in extended and name != "PATH":
                    self.unsure.append((name, inst.source))
        handler = getattr(self, "on_" + type(expanded).__name__.lower(), None)
        if handler is not None:
            handler(expanded)
        else:
            self.record(expanded)

    def apply_arg(self, inst: ins.Arg) -> None:
        defs: list[ins.ArgDef] = []
        self.record(inst)
        r = self.r
        for d in inst.args:
            value: str | None
            if d.key in r.build_args:
                value = r.build_args[d.key]
                r.used.add(d.key)
            elif d.value is None:
                value = r.meta.get(d.key)
            else:
                try:
                    value = r.lexer.process_word(d.value, self.build_env)
                except ShellError as exc:
                    raise r.error(f'failed to process "{d.value}": {exc}', inst.source) from None
            self.declared.add(d.key)
            if value is not None:
                self.args[d.key] = value
                if d.key not in self.image_env and d.key not in SBOM_SCAN_ARGS:
                    # ENV always wins over an ARG of the same name.
                    self.build_env[d.key] = value
                self._cache = None
            defs.append(ins.ArgDef(d.key, value))
        self.steps[-1] = evolve(self.steps[-1], instruction=evolve(inst, args=tuple(defs)))

    def on_env(self, inst: ins.Env) -> None:
        self.record(inst)
        for pair in inst.pairs:
            # Docker replaces a variable in place, keeping the order of the config's env.
            self.image_env[pair.key] = pair.value
            self.build_env[pair.key] = pair.value
        self._cache = None

    def on_label(self, inst: ins.Label) -> None:
        self.record(inst)
        for pair in inst.pairs:
            self.labels[pair.key] = pair.value

    def on_workdir(self, inst: ins.Workdir) -> None:
        path = inst.path
        if self.platform.os != "windows":
            path = posixpath.normpath(posixpath.join(self.workdir(), path))
            if path.startswith("//"):
                path = "/" + path.lstrip("/")
        if path != inst.path:
            inst = evolve(inst, path=path)
        self.record(inst)
        self.config = replace(self.config, working_dir=path)

    def on_user(self, inst: ins.User) -> None:
        self.record(inst)
        self.config = replace(self.config, user=inst.user)

    def on_expose(self, inst: ins.Expose) -> None:
        ports = list(self.config.exposed_ports)
        normalized: list[str] = []
        for spec in inst.ports:
            match = _PORT.match(spec)
            if match is None:
                raise self.r.error(f"invalid containerPort: {spec}", inst.source)
            proto = (match.group(3) or "tcp").lower()
            if proto not in ("tcp", "udp", "sctp"):
                raise self.r.error(f"invalid proto: {match.group(3)}", inst.source)
            low = _number(match.group(1), 65535) or 0
            high = (_number(match.group(2), 65535) or 0) if match.group(2) else low
            if high < low or high > 65535:
                raise self.r.error(
                    f"invalid range specified for containerPort: {spec}", inst.source
                )
            normalized.extend(f"{n}/{proto}" for n in range(low, high + 1))
        ports.extend(p for p in normalized if p not in ports)
        self.record(evolve(inst, ports=tuple(normalized)))
        self.config = replace(self.config, exposed_ports=tuple(ports))

    def on_volume(self, inst: ins.Volume) -> None:
        self.record(inst)
        volumes = list(self.config.volumes)
        volumes.extend(v for v in inst.volumes if v not in volumes)
        self.config = replace(self.config, volumes=tuple(volumes))

    def on_stopsignal(self, inst: ins.StopSignal) -> None:
        if not _valid_signal(inst.signal):
            raise self.r.error(f"Invalid signal: {inst.signal}", inst.source)
        self.record(inst)
        self.config = replace(self.config, stop_signal=inst.signal)

    def _argv(self, command: tuple[str, ...], prepend_shell: bool) -> tuple[str, ...]:
        return (*self.shell, *command) if prepend_shell else command

    def on_cmd(self, inst: ins.Cmd) -> None:
        self.record(inst)
        self.config = replace(self.config, cmd=self._argv(inst.command, inst.prepend_shell))
        self.cmd_set = True

    def on_entrypoint(self, inst: ins.Entrypoint) -> None:
        self.record(inst)
        entrypoint = self._argv(inst.command, inst.prepend_shell)
        self.config = replace(self.config, entrypoint=entrypoint)
        if not self.cmd_set:
            # An entrypoint set here drops the CMD inherited from the base.
            self.config = replace(self.config, cmd=None)

    def on_shell(self, inst: ins.Shell) -> None:
        self.record(inst)
        self.shell = inst.shell
        self.config = replace(self.config, shell=inst.shell)

    def on_healthcheck(self, inst: ins.Healthcheck) -> None:
        self.record(inst)
        check = Healthcheck(
            inst.test,
            inst.interval,
            inst.timeout,
            inst.start_period,
            inst.start_interval,
            inst.retries,
        )
        self.config = replace(self.config, healthcheck=check)

    def on_onbuild(self, inst: ins.Onbuild) -> None:
        self.record(inst)
        self.config = replace(self.config, on_build=(*self.config.on_build, inst.expression))

    def on_copy(self, inst: ins.Copy) -> None:
        from_stage: int | None = None
        if inst.from_:
            from_stage = self.r.stage_ref(inst.from_, inst)
            if from_stage is not None:
                self.deps.add(from_stage)
        self.record(inst, from_stage=from_stage)

    def on_run(self, inst: ins.Run) -> None:
        stages: list[int | None] = []
        for mount in inst.mounts:
            index = self.r.stage_ref(mount.from_, inst) if mount.from_ else None
            if index is not None:
                self.deps.add(index)
            stages.append(index)
        self.record(inst, mount_stages=tuple(stages))

    def finish(self) -> ResolvedStage:
        self.config = replace(
            self.config,
            env=tuple(f"{k}={v}" for k, v in self.image_env.items()),
            labels=tuple(self.labels.items()),
        )
        resolved = ResolvedStage(
            self.stage.index,
            self.stage.name,
            self.r.bases[self.stage.index],
            self.platform,
            self.r.froms[self.stage.index],
            tuple(self.steps),
            self.config,
            tuple(sorted(self.deps)),
            tuple(self.undefined) or self.surely_undefined(),
            self.env_known,
        )
        return resolved
