"""`--call outline` and `--call targets`: what a Dockerfile offers, without building it.

Descriptions come from the comment block right above a FROM or ARG: the first line that
starts with the stage or arg name and a space, without the name (`# GO_VERSION sets ...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bale.errors import DockerfileError, SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.parser import ParsedDockerfile, suggest
from bale.frontends.dockerfile.resolve import platform_args, resolve
from bale.frontends.dockerfile.stages import Dockerfile, load
from bale.oci.platform import Platform, host_platform


@dataclass(frozen=True)
class OutlineArg:
    name: str
    value: str | None  # the default (after --build-arg), None when there is none
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


def targets(source: str | ParsedDockerfile | Dockerfile, filename: str = "Dockerfile") -> list[
    TargetInfo
]:
    """Every stage, as BuildKit lists them (unnamed ones too), with their descriptions; the
    last is the default."""
    df = load(source, filename)
    comments = _comments(df.parsed)
    last = df.stages[-1].index
    out: list[TargetInfo] = []
    for stage in df.stages:
        frm = stage.from_
        desc = _description(comments.get(frm.source.start, ()), stage.name)
        out.append(TargetInfo(stage.name, desc, stage.index == last, frm.source, frm.image,
                              frm.platform))
    return out


def outline(
    source: str | ParsedDockerfile | Dockerfile,
    *,
    filename: str = "Dockerfile",
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    target_platform: Platform | None = None,
) -> Outline:
    """The target's args (global ones it uses and those of the stages it needs), secrets and
    ssh mounts."""
    df = load(source, filename)
    platform = target_platform or host_platform()
    build = resolve(df, target_platform=platform, build_args=build_args or {}, target=target)
    comments = _comments(df.parsed)
    automatic = set(platform_args(platform, platform))
    overrides = dict(build_args or {})
    args: dict[str, OutlineArg] = {}
    used_names: set[str] = set()
    secrets: dict[str, OutlineSecret] = {}
    ssh: dict[str, OutlineSecret] = {}
    for stage in build.stages:
        used_names.update(_referenced(df.stages[stage.index].from_))
        for inst in df.stages[stage.index].instructions:
            if isinstance(inst, ins.Arg):
                for d in inst.args:
                    if d.key in automatic or d.key in args:
                        continue
                    if d.value is None:
                        used_names.add(d.key)
                        continue
                    desc = _description(comments.get(inst.source.start, ()), d.key)
                    args[d.key] = OutlineArg(d.key, overrides.get(d.key, d.value), desc,
                                             inst.source)
        for step in stage.steps:
            if isinstance(step.instruction, ins.Run):
                for mount in step.instruction.mounts:
                    if mount.type == "secret":
                        secrets.setdefault(mount.id, OutlineSecret(mount.id, mount.required,
                                                                   step.source))
                    elif mount.type == "ssh":
                        ssh.setdefault(mount.id, OutlineSecret(mount.id, mount.required,
                                                               step.source))
    meta: list[OutlineArg] = []
    for arg in df.meta_args:
        for d in arg.args:
            if d.key in used_names and d.key not in args and d.key not in automatic:
                desc = _description(comments.get(arg.source.start, ()), d.key)
                meta.append(OutlineArg(d.key, overrides.get(d.key, d.value), desc, arg.source))
    stage = build.target
    desc = _description(comments.get(stage.from_.source.start, ()), stage.name)
    return Outline(stage.display_name, desc, (*meta, *args.values()),
                   tuple(secrets.values()), tuple(ssh.values()))


def _referenced(frm: ins.From) -> set[str]:
    import re

    text = f"{frm.image} {frm.platform}"
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


def unknown_call(name: str) -> DockerfileError:
    return DockerfileError(
        f"unknown call {name!r}{suggest(name, ('build', 'check', 'outline', 'targets'))}",
        hint="use --call build, check, outline or targets",
    )
