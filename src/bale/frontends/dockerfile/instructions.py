"""Typed instructions: one frozen dataclass per Dockerfile instruction, built from AST nodes.

Values here are as written (not expanded); `bale.frontends.dockerfile.expand` produces the
expanded copies. Every instruction carries `source` (its line range) and `keyword` (its
spelling in the file, for the casing checks).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar

from bale.errors import DockerfileError, SourceRange
from bale.frontends.dockerfile.flags import FlagError, Flags, parse_flags
from bale.frontends.dockerfile.mounts import Mount, MountError, parse_mount_as_written
from bale.frontends.dockerfile.parser import (
    Heredoc,
    Node,
    ParsedDockerfile,
    ParseFailure,
    parse_heredoc,
    suggest,
)

INSTRUCTIONS = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)
STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")


@dataclass(frozen=True, kw_only=True)
class Instruction:
    source: SourceRange
    keyword: str
    original: str

    @property
    def name(self) -> str:
        return self.keyword.upper()


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    """`FROM [--platform=P] image [AS name]`; `stage_name` is lowercased ("" when unnamed)."""

    image: str
    stage_name: str = ""
    platform: str = ""
    as_keyword: str = ""


@dataclass(frozen=True, kw_only=True)
class Run(Instruction):
    """`command` is the exec-form argv, or one shell string when `prepend_shell`.
    `files` are heredoc bodies; `mount_specs` the `--mount` values as written."""

    command: tuple[str, ...]
    prepend_shell: bool
    files: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    mount_specs: tuple[str, ...] = ()
    network: str = ""
    security: str = ""


@dataclass(frozen=True, kw_only=True)
class Cmd(Instruction):
    command: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True, kw_only=True)
class Entrypoint(Instruction):
    command: tuple[str, ...]
    prepend_shell: bool


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[KeyValue, ...]
    legacy: bool = False


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[KeyValue, ...]
    legacy: bool = False


@dataclass(frozen=True)
class ArgDef:
    """One ARG: `value` is None when declared without a default."""

    key: str
    value: str | None = None


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    args: tuple[ArgDef, ...]


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    volumes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    signal: str


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    maintainer: str


@dataclass(frozen=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: a file named `path` holding `data`."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True, kw_only=True)
class Copy(Instruction):
    """COPY and ADD. `sources` excludes heredoc sources, which are in `contents`; for ADD,
    `from_`/`parents` are unused and `keep_git_dir`/`checksum` apply."""

    sources: tuple[str, ...]
    dest: str
    contents: tuple[SourceContent, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    keep_git_dir: bool = False
    checksum: str = ""
    # ADD --unpack: None extracts local archives only; True remote ones too; False neither.
    unpack: bool | None = None

    @property
    def is_add(self) -> bool:
        return self.keyword.upper() == "ADD"


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    """`test` is Docker's form: ("NONE",), ("CMD", argv...) or ("CMD-SHELL", script).
    Durations are nanoseconds; 0 means inherit the default."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class Onbuild(Instruction):
    """`expression` is the trigger as written (stored in the image config); `trigger` typed."""

    expression: str
    trigger: Instruction = field(compare=False)


_T = TypeVar("_T")


def evolve(obj: _T, **changes: object) -> _T:
    """`dataclasses.replace` for these frozen dataclasses (no __post_init__, no slots),
    without re-running __init__: it sits on the hot path of resolving large files."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


class _Fail(Exception):
    pass


class _Common(TypedDict):
    source: SourceRange
    keyword: str
    original: str


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    body = text
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if body == "":
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _DURATION.match(body, pos)
        if match is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if total >= 2**63:  # Go's Duration is an int64 of nanoseconds (and inf is not a number)
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * round(total)


def _duration(flags: Flags, name: str) -> int:
    value = flags.string(name)
    if not value:
        return 0
    try:
        nanos = parse_duration(value)
    except ValueError as exc:
        raise _Fail(str(exc)) from None
    if nanos < 1_000_000:
        raise _Fail(f'{name.replace("-", " ").capitalize()} "{name}" cannot be less than 1ms')
    return nanos


def _one(node: Node, what: str = "exactly one argument") -> str:
    if len(node.args) != 1 or node.args[0] == "":
        raise _Fail(f"{node.keyword.upper()} requires {what}")
    return node.args[0]


def _at_least_one(node: Node) -> tuple[str, ...]:
    if not node.args:
        raise _Fail(f"{node.keyword.upper()} requires at least one argument")
    return node.args


def _pairs(node: Node) -> tuple[KeyValue, ...]:
    a = node.args
    if "" in a[::2]:
        raise _Fail(f"{node.keyword.upper()} names can not be blank")
    return tuple(KeyValue(a[i], a[i + 1]) for i in range(0, len(a) - 1, 2))


def _from(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    args = node.args
    stage = ""
    as_kw = ""
    if len(args) == 3 and args[1].lower() == "as":
        stage = args[2].lower()
        as_kw = args[1]
        if not STAGE_NAME.match(stage):
            raise _Fail(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise _Fail("FROM requires either one or three arguments")
    return From(
        **common,
        image=args[0],
        stage_name=stage,
        platform=flags.string("platform") or "",
        as_keyword=as_kw,
    )


def _run(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    if not node.args and not node.json:
        raise _Fail("RUN requires at least one argument")
    network = flags.string("network") or ""
    if network and network not in NETWORK_MODES:
        raise _Fail(f'network mode "{network}" not supported')
    security = flags.string("security") or ""
    if security and security not in SECURITY_MODES:
        raise _Fail(f'security "{security}" is not valid')
    specs = flags.many("mount")
    try:
        mounts = tuple(parse_mount_as_written(s, i) for i, s in enumerate(specs))
    except MountError as exc:
        raise _Fail(str(exc)) from None
    return Run(
        **common,
        command=node.args,
        prepend_shell=not node.json,
        files=node.heredocs,
        mounts=mounts,
        mount_specs=specs,
        network=network,
        security=security,
    )


def _cmd_entrypoint(
    node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange
) -> Instruction:
    cls = Cmd if kw == "cmd" else Entrypoint
    return cls(**common, command=node.args, prepend_shell=not node.json)


def _shell(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    if not node.json:
        raise _Fail("SHELL requires the arguments to be in JSON form")
    return Shell(**common, shell=_at_least_one(node))


def _env(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    return Env(**common, pairs=_pairs(node), legacy=node.legacy)


def _label(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    return Label(**common, pairs=_pairs(node), legacy=node.legacy)


def _arg(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    defs: list[ArgDef] = []
    for word in _at_least_one(node):
        key, has_value, value = word.partition("=")
        if has_value and key == "":
            raise _Fail("ARG names can not be blank")
        defs.append(ArgDef(key, value if has_value else None))
    return Arg(**common, args=tuple(defs))


def _expose(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    # BuildKit sorts the words before expanding them.
    return Expose(**common, ports=tuple(sorted(_at_least_one(node))))


def _user(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    return User(**common, user=_one(node))


def _workdir(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    return Workdir(**common, path=_one(node))


def _stopsignal(
    node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange
) -> Instruction:
    return StopSignal(**common, signal=_one(node))


def _maintainer(
    node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange
) -> Instruction:
    return Maintainer(**common, maintainer=_one(node))


def _volume(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    volumes = tuple(v.strip() for v in _at_least_one(node))
    if any(v == "" for v in volumes):
        raise _Fail("VOLUME specified can not be an empty string")
    return Volume(**common, volumes=volumes)


def _copy_add(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    upper = kw.upper()
    if len(node.args) < 2:
        raise _Fail(
            f"{upper} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    if not node.json and parse_heredoc(node.args[-1]) is not None:
        raise _Fail(f"{upper} cannot accept a heredoc as a destination")
    docs = {d.name: d for d in node.heredocs}
    sources: list[str] = []
    contents: list[SourceContent] = []
    for src in node.args[:-1]:
        doc = parse_heredoc(src) if "<<" in src and not node.json else None
        if doc is not None and doc.name in docs:
            body = docs[doc.name]
            contents.append(SourceContent(body.name, body.data(), body.expand))
        else:
            sources.append(src)
    return Copy(
        **common,
        sources=tuple(sources),
        dest=node.args[-1],
        contents=tuple(contents),
        from_=flags.string("from") or "",
        chown=flags.string("chown") or "",
        chmod=flags.string("chmod") or "",
        link=flags.flag("link"),
        parents=flags.flag("parents"),
        excludes=flags.many("exclude"),
        keep_git_dir=flags.flag("keep-git-dir"),
        checksum=flags.string("checksum") or "",
        unpack=flags.bools.get("unpack"),
    )


def _healthcheck(
    node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange
) -> Instruction:
    if not node.args:
        raise _Fail("HEALTHCHECK requires at least one argument")
    typ = node.args[0].upper()
    if typ == "NONE":
        if len(node.args) > 1 or node.flags:
            raise _Fail("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(**common, test=("NONE",))
    if typ != "CMD":
        raise _Fail(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    cmd = node.args[1:]
    if not cmd or (not node.json and cmd[0] == ""):
        raise _Fail("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *cmd) if node.json else ("CMD-SHELL", cmd[0])
    retries_text = flags.string("retries")
    retries = 0
    if retries_text:
        try:
            retries = int(retries_text)
        except ValueError:
            raise _Fail(f'strconv.ParseInt: parsing "{retries_text}": invalid syntax') from None
        if retries >= 2**63:
            raise _Fail(f'strconv.ParseInt: parsing "{retries_text}": value out of range')
        if retries < 1:
            raise _Fail(f"--retries must be at least 1 (not {retries})")
    return Healthcheck(
        **common,
        test=test,
        interval=_duration(flags, "interval"),
        timeout=_duration(flags, "timeout"),
        start_period=_duration(flags, "start-period"),
        start_interval=_duration(flags, "start-interval"),
        retries=retries,
    )


def _onbuild(node: Node, kw: str, common: _Common, flags: Flags, rng: SourceRange) -> Instruction:
    child = node.child
    if child is None:
        raise _Fail("ONBUILD requires at least one argument")
    if child.name == "onbuild":
        raise _Fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if child.name in ("from", "maintainer"):
        raise _Fail(f"{child.keyword.upper()} isn't allowed as an ONBUILD trigger")
    trigger = _build_checked(child, rng)
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    for body in child.heredocs:
        expression += "\n" + body.content + body.name
    return Onbuild(**common, expression=expression, trigger=trigger)


_BUILDERS: dict[str, Callable[[Node, str, _Common, Flags, SourceRange], Instruction]] = {
    "from": _from,
    "run": _run,
    "cmd": _cmd_entrypoint,
    "entrypoint": _cmd_entrypoint,
    "shell": _shell,
    "env": _env,
    "label": _label,
    "arg": _arg,
    "expose": _expose,
    "user": _user,
    "workdir": _workdir,
    "stopsignal": _stopsignal,
    "maintainer": _maintainer,
    "volume": _volume,
    "copy": _copy_add,
    "add": _copy_add,
    "healthcheck": _healthcheck,
    "onbuild": _onbuild,
}


def _build(node: Node, rng: SourceRange) -> Instruction:
    """The typed instruction; flags an instruction does not take are unknown flags."""
    kw = node.name
    builder = _BUILDERS.get(kw)
    if builder is None:
        raise _Fail(f"unknown instruction: {node.keyword}{suggest(node.keyword, INSTRUCTIONS)}")
    common: _Common = {"source": rng, "keyword": node.keyword, "original": node.original}
    flags = parse_flags(kw, node.flags)
    return builder(node, kw, common, flags, rng)


_KNOWN = frozenset(i.lower() for i in INSTRUCTIONS)


def _build_checked(node: Node, rng: SourceRange) -> Instruction:
    if node.name not in _KNOWN:
        raise _Fail(f"unknown instruction: {node.keyword}{suggest(node.keyword, INSTRUCTIONS)}")
    return _build(node, rng)


def from_node(node: Node, parsed: ParsedDockerfile) -> Instruction:
    """The typed instruction for one node; DockerfileError at the node's lines otherwise."""
    rng = SourceRange(parsed.filename, node.start, node.end)
    try:
        return _build_checked(node, rng)
    except (_Fail, FlagError, ParseFailure) as exc:
        raise DockerfileError(
            f"dockerfile parse error on line {node.start}: {exc}",
            source=rng,
            lines=parsed.lines,
        ) from None


def instructions(parsed: ParsedDockerfile) -> list[Instruction]:
    return [from_node(node, parsed) for node in parsed.nodes]
