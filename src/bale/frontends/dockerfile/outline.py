"""`--call outline` and `--call targets`: what a Dockerfile offers, without building it.

Descriptions come from the comment block right above a FROM or ARG: the first line that
starts with the stage or arg name and a space, without the name (`# GO_VERSION sets ...`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bale.errors import DockerfileError, SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.parser import ParsedDockerfile, suggest
from bale.frontends.dockerfile.resolve import StageBase, platform_args, resolve
from bale.frontends.dockerfile.shell import Lexer
from bale.frontends.dockerfile.stages import Dockerfile, load
from bale.oci.platform import Platform, host_platform


@dataclass(frozen=True)
class OutlineArg:
    name: str
    value: str  # the default (after --build-arg, expanded), "" when there is none
    description: str
    source: SourceRange


@dataclass(frozen=True)
class OutlineSecret:
    id: str
    required: bool
    source: SourceRange


@dataclass(frozen=True)
class Outline:
    name: str
    description: str
    args: tuple[OutlineArg, ...]
    secrets: tuple[OutlineSecret, ...]
    ssh: tuple[OutlineSecret, ...]


@dataclass(frozen=True)
class TargetInfo:
    name: str  # "" for an unnamed stage
    description: str
    default: bool
    source: SourceRange
    base: str = ""  # the FROM image as written
    platform: str = ""  # FROM --platform as written


def _description(comments: tuple[str, ...], name: str) -> str:
    # BuildKit takes the first comment line that starts with the name and a space.
    if not name:
        return ""
    for line in comments:
        if line.startswith(name + " "):
            return line[len(name) + 1 :]
    return ""


def _comments(parsed: ParsedDockerfile) -> dict[int, tuple[str, ...]]:
    return {node.start: node.comments for node in parsed.nodes}


def targets(
    source: str | ParsedDockerfile | Dockerfile, filename: str = "Dockerfile"
) -> list[TargetInfo]:
    """Every stage, as BuildKit lists them (unnamed ones too), with their descriptions; the
    last is the default."""
    df = load(source, filename)
    comments = _comments(df.parsed)
    last = df.stages[-1].index
    out: list[TargetInfo] = []
    for stage in df.stages:
        frm = stage.from_
        desc = _description(comments.get(frm.source.start, ()), stage.name)
        out.append(
            TargetInfo(stage.name, desc, stage.index == last, frm.source, frm.image, frm.platform)
        )
    return out


@dataclass
class _Capture:
    """BuildKit's outlineCapture for one stage: every arg it knows (name → definition and
    the names its default used) and the names it uses."""

    args: dict[str, tuple[OutlineArg, frozenset[str]]]
    used: set[str]
    secrets: dict[str, OutlineSecret]
    ssh: dict[str, OutlineSecret]

    def clone(self) -> _Capture:
        return _Capture(dict(self.args), set(self.used), dict(self.secrets), dict(self.ssh))


_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _refs(word: str, env: Mapping[str, str]) -> frozenset[str]:
    return frozenset(n for n in _REF.findall(word) if n in env)


def outline(
    source: str | ParsedDockerfile | Dockerfile,
    *,
    filename: str = "Dockerfile",
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    target_platform: Platform | None = None,
) -> Outline:
    """What the target needs, as BuildKit's outline: the args its stages (and the stages
    they build on or copy from) declare or use, global ones those depend on, expanded and
    in file order; secrets and ssh mounts likewise."""
    df = load(source, filename)
    platform = target_platform or host_platform()
    build = resolve(df, target_platform=platform, build_args=build_args or {}, target=target)
    lexer = Lexer(df.parsed.escape)
    comments = _comments(df.parsed)
    overrides = dict(build_args or {})
    env = platform_args(platform, platform)
    top = _Capture({}, set(), {}, {})
    for arg in df.meta_args:
        for d in arg.args:
            deps: frozenset[str] = frozenset()
            value: str | None = None
            if d.key in overrides:
                value = overrides[d.key]
            elif d.value is not None:
                deps = _refs(d.value, env)
                value = lexer.process_word(d.value, env)
                if d.key in deps:  # `ARG FOO=${FOO}x` keeps what the earlier FOO used
                    old = top.args.get(d.key)
                    deps = (deps - {d.key}) | (old[1] if old else frozenset())
            if value is not None:
                env[d.key] = value
            desc = _description(comments.get(arg.source.start, ()), d.key)
            top.args[d.key] = (OutlineArg(d.key, value or "", desc, arg.source), deps)
    captures: dict[int, _Capture] = {}
    for stage in sorted(build.stages, key=lambda s: s.index):
        base = df.stages[stage.index]
        parent = stage.base.index if isinstance(stage.base, StageBase) else None
        cap = (captures.get(parent, top) if parent is not None else top).clone()
        frm = base.from_
        cap.used.update(_refs(f"{frm.image} {frm.platform}", env))
        local: dict[str, str] = {}
        for inst in base.instructions:
            if isinstance(inst, ins.Env):
                for pair in inst.pairs:
                    local[pair.key] = lexer.process_word(pair.value, {**env, **local})
            if not isinstance(inst, ins.Arg):
                continue
            for d in inst.args:
                inherited = d.value is None and d.key not in overrides and d.key in env
                if d.key in overrides:
                    value = overrides[d.key]
                elif d.value is not None:
                    value = lexer.process_word(d.value, {**env, **local})
                else:
                    value = env.get(d.key)
                if not inherited:
                    desc = _description(comments.get(inst.source.start, ()), d.key)
                    cap.args[d.key] = (
                        OutlineArg(d.key, value or "", desc, inst.source),
                        frozenset(),
                    )
                cap.used.add(d.key)
                if value is not None:
                    local[d.key] = value
        for step in stage.steps:
            if isinstance(step.instruction, ins.Run):
                for mount in step.instruction.mounts:
                    if mount.type in ("secret", "ssh"):
                        found = cap.secrets if mount.type == "secret" else cap.ssh
                        found.setdefault(
                            mount.id, OutlineSecret(mount.id, mount.required, step.source)
                        )
        captures[stage.index] = cap
    deps_of = {s.index: s.dependencies for s in build.stages}
    args: list[OutlineArg] = []
    secrets: list[OutlineSecret] = []
    ssh: list[OutlineSecret] = []
    seen_args: set[str] = set()
    seen_secrets: set[str] = set()
    seen_ssh: set[str] = set()
    visited: set[int] = set()

    # The target first, then what it builds on and copies from (depth first, in order; a
    # stack rather than recursion: a file may chain a thousand stages); a name seen is kept.
    stack = [build.target.index]
    while stack:
        index = stack.pop()
        if index in visited or index not in captures:
            continue
        visited.add(index)
        cap = captures[index]
        used = _all_used(cap)
        for name in sorted(used):
            if name in cap.args and name not in seen_args:
                seen_args.add(name)
                args.append(cap.args[name][0])
        for found, out, seen in ((cap.secrets, secrets, seen_secrets), (cap.ssh, ssh, seen_ssh)):
            for key, item in found.items():
                if key not in seen:
                    seen.add(key)
                    out.append(item)
        stack.extend(reversed(tuple(deps_of.get(index, ()))))
    order = lambda item: item.source.start  # noqa: E731 - file order, as BuildKit sorts
    stage = build.target
    desc = _description(comments.get(stage.from_.source.start, ()), stage.name)
    return Outline(
        stage.name,
        desc,
        tuple(sorted(args, key=order)),
        tuple(sorted(secrets, key=order)),
        tuple(sorted(ssh, key=order)),
    )


def _all_used(cap: _Capture) -> set[str]:
    """The names used, with the global args their defaults used, transitively."""
    used: set[str] = set()
    pending = list(cap.used)
    while pending:
        name = pending.pop()
        if name in used:
            continue
        used.add(name)
        if name in cap.args:
            pending.extend(cap.args[name][1])
    return used


def unknown_call(name: str) -> DockerfileError:
    return DockerfileError(
        f"unknown call {name!r}{suggest(name, ('build', 'check', 'outline', 'targets'))}",
        hint="use --call build, check, outline or targets",
    )
