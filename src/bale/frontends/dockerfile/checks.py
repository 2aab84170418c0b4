"""`--check`: BuildKit's Dockerfile lint rules that users rely on.

The `# check=skip=Rule1,Rule2;error=true` directive (or the BUILDKIT_DOCKERFILE_CHECK build
arg) skips rules (`skip=all` skips all) and turns findings into errors.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from dataclasses import replace as dc_replace

from bale.errors import BaleError, DockerfileError, SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.parser import ParsedDockerfile, parse, suggest
from bale.frontends.dockerfile.resolve import (
    PROXY_ARGS,
    platform_args,
    resolve,
    undefined_in_from,
)
from bale.frontends.dockerfile.shell import Lexer, ShellError
from bale.frontends.dockerfile.stages import Dockerfile, load
from bale.frontends.dockerignore import DockerIgnore
from bale.oci.platform import Platform
from bale.oci.reference import Reference

RULES = {
    "StageNameCasing": "Stage names should be lowercase",
    "FromAsCasing": "The 'as' keyword should match the case of the 'from' keyword",
    "FromPlatformFlagConstDisallowed": "FROM --platform flag should not use a constant value",
    "JSONArgsRecommended": "JSON arguments recommended for ENTRYPOINT/CMD to prevent "
    "unintended behavior related to OS signals",
    "UndefinedVar": "Variables should be defined before their use",
    "UndefinedArgInFrom": "FROM command must use declared ARGs",
    "SecretsUsedInArgOrEnv": "Sensitive data should not be used in the ARG or ENV commands",
    "DuplicateStageName": "Stage names should be unique",
    "ReservedStageName": "Reserved words should not be used as stage names",
    "MaintainerDeprecated": "The MAINTAINER instruction is deprecated, use a label instead "
    "to define an image author",
    "LegacyKeyValueFormat": "Legacy key/value format with whitespace separator should not be used",
    "ConsistentInstructionCasing": "All commands within the Dockerfile should use the same "
    "casing (either upper or lower)",
    "MultipleInstructionsDisallowed": "Multiple instructions of the same type should not be "
    "used in the same stage",
    "WorkdirRelativePath": "Relative workdir without an absolute workdir declared within "
    "the build can have unexpected results if the base image changes",
    "NoEmptyContinuation": "Empty continuation lines will become errors in a future release",
    "RedundantTargetPlatform": "Setting platform to predefined $TARGETPLATFORM in FROM is "
    "redundant as this is the default behavior",
    "ExposeProtoCasing": "Protocol in EXPOSE instruction should be lowercase",
    "ExposeInvalidFormat": "IP address and host-port mapping should not be used in EXPOSE "
    "instruction. This will become an error in a future release",
    "InvalidDefaultArgInFrom": "Default value for global ARG results in an empty or invalid "
    "base image name",
    "CopyIgnoredFile": "Attempting to Copy file that is excluded by .dockerignore",
    "InvalidBaseImagePlatform": "Base image platform does not match expected target platform",
    "InvalidDefinitionDescription": "Comment for build stage or argument should follow the "
    "format: `# <arg/stage name> <description>`. If this is not intended to be a description "
    "comment, add an empty line or comment between the instruction and the comment.",
}
# Rules that run only when `experimental=` names them (or says all).
EXPERIMENTAL = frozenset(("InvalidDefinitionDescription",))
# BuildKit's word rules: a secret word at either end of the name (or all of it), unless
# an allowed word is there too (`PUBLIC_KEY`, `PASSWORD_FILE`, `AUTH_MODULE_VERSION`).
_SECRET = re.compile(
    r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret"
    r"|token)(?:_|$)"
)
_ALLOWED = re.compile(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)")
RESERVED_STAGE_NAMES = ("context", "scratch")
# The rules BuildKit runs while it parses instructions (the rest run on the parsed stages).
PARSE_RULES = frozenset(
    (
        "StageNameCasing",
        "FromAsCasing",
        "MaintainerDeprecated",
        "InvalidDefinitionDescription",
    )
)
# The rules BuildKit runs as it builds a stage: a build reports them for its stages only.
DISPATCH_RULES = frozenset(
    (
        "JSONArgsRecommended",
        "WorkdirRelativePath",
        "LegacyKeyValueFormat",
        "UndefinedVar",
        "SecretsUsedInArgOrEnv",
        "MultipleInstructionsDisallowed",
        "ExposeProtoCasing",
        "ExposeInvalidFormat",
        "CopyIgnoredFile",
    )
)


def rule_url(rule: str) -> str:
    kebab = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", rule).lower()
    return f"https://docs.docker.com/go/dockerfile/rule/{kebab}/"


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    source: SourceRange | None
    stage: int | None = None  # the stage of a rule BuildKit runs only on the stages it builds

    @property
    def short(self) -> str:
        """As BuildKit's progress prints it: `Rule: detail (line N)`."""
        line = f" (line {self.source.start})" if self.source else ""
        return f"{self.rule}: {self.message}{line}"

    @property
    def description(self) -> str:
        return RULES.get(self.rule, "")

    @property
    def url(self) -> str:
        return rule_url(self.rule)


@dataclass(frozen=True)
class CheckResult:
    filename: str
    lines: tuple[str, ...]
    findings: tuple[Finding, ...]
    error_on_findings: bool = False
    error: DockerfileError | None = None  # what stopped the check, findings before it kept

    @property
    def failed(self) -> bool:
        return self.error_message is not None

    @property
    def error_message(self) -> str | None:
        """BuildKit's lint result error: the parse or resolution error, or with `error=true`
        the rules that found something."""
        if self.error is not None:
            return self.error.message
        if self.error_on_findings and self.findings:
            rules = sorted({f.rule for f in self.findings})
            return "lint violation found for rules: " + ", ".join(rules)
        return None


@dataclass(frozen=True)
class CheckConfig:
    skip: frozenset[str] = frozenset()
    error: bool = False
    experimental: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> CheckConfig:
        skip: set[str] = set()
        experimental: set[str] = set()
        error = False
        for part in text.split(";"):
            key, _, value = part.strip().partition("=")
            key = key.strip().lower()
            if key == "skip":
                skip.update(v.strip() for v in value.split(",") if v.strip())
            elif key == "error":
                error = value.strip().lower() == "true"
            elif key == "experimental":
                experimental.update(v.strip() for v in value.split(",") if v.strip())
            elif key:
                raise DockerfileError(
                    f"invalid check directive key {key!r}", hint="use skip=RULE,... or error=true"
                )
        return cls(frozenset(skip), error, frozenset(experimental))

    def skips(self, rule: str) -> bool:
        if rule in EXPERIMENTAL and not ({"all", rule} & self.experimental):
            return True
        return "all" in self.skip or rule in self.skip


_COMMENT_DIRECTIVE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


def _instruction_config(comments: tuple[str, ...]) -> CheckConfig | None:
    """`# check=skip=Rule // why` right above an instruction applies to that instruction."""
    for comment in comments:
        match = _COMMENT_DIRECTIVE.match(comment)
        if match is None or match.group(1).lower() != "check":
            continue
        try:
            return CheckConfig.parse(match.group(2).split(" ")[0])
        except DockerfileError:
            return None
    return None


def _is_secret(name: str) -> bool:
    return bool(_SECRET.search(name)) and not _ALLOWED.search(name)


def _written_stage_name(frm: ins.From) -> str:
    words = frm.original.split()
    return words[-1] if frm.stage_name and words else ""


def _loadable_prefix(parsed: ParsedDockerfile, exc: DockerfileError) -> Dockerfile | None:
    # BuildKit reports the findings of the instructions before the one that failed.
    if exc.source is None:
        return None
    nodes = tuple(n for n in parsed.nodes if n.end < exc.source.start)
    if not nodes:
        return None
    try:
        return load(dc_replace(parsed, nodes=nodes))
    except DockerfileError:
        return None


def _expose_parts(raw: str) -> tuple[str, str, str]:
    """Docker's nat.SplitParts of `[ip:]host:container[/proto]`: ip, host port, proto."""
    spec, _, proto = raw.partition("/")
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", proto
    if len(parts) == 2:
        return "", parts[0], proto
    return ":".join(parts[:-2]), parts[-2], proto


def _copy_ignored(src: str, ignore: DockerIgnore) -> bool:
    path = posixpath.normpath("/" + src).lstrip("/") or "."
    if path == ".":
        # The context root counts only for patterns that leave out everything.
        return any(not p.exclusion and p.text in ("*", "**", "**/*") for p in ignore.patterns)
    parts = path.split("/")
    return any(ignore.excluded("/".join(parts[: i + 1])) for i in range(len(parts)))


def build_check(
    parsed: ParsedDockerfile,
    stages: Collection[int],
    *,
    target_platform: Platform,
    build_platform: Platform | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    dockerignore: DockerIgnore | None = None,
) -> CheckResult:
    """What a build reports, as BuildKit's: the findings of the whole file, but those of the
    rules run while building a stage only for the stages built."""
    result = check(
        parsed,
        target_platform=target_platform,
        build_platform=build_platform,
        build_args=build_args,
        target=target,
        dockerignore=dockerignore,
    )
    kept = tuple(f for f in result.findings if f.stage is None or f.stage in stages)
    return dc_replace(result, findings=kept, error=None)


def check(
    source: str | ParsedDockerfile,
    *,
    filename: str = "Dockerfile",
    target_platform: Platform,
    build_platform: Platform | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    dockerignore: DockerIgnore | None = None,
) -> CheckResult:
    """Lint a Dockerfile as BuildKit's lint subrequest does: every stage, and the findings
    before a parse or resolution error kept beside it. A file that does not parse at all
    raises DockerfileError."""
    parsed = source if isinstance(source, ParsedDockerfile) else parse(source, filename)
    args = dict(build_args or {})
    from_arg = args.get("BUILDKIT_DOCKERFILE_CHECK")
    config_text = from_arg or parsed.directive("check") or ""
    try:
        config = CheckConfig.parse(config_text)
    except DockerfileError as exc:
        if from_arg:
            raise DockerfileError(
                f"BUILDKIT_DOCKERFILE_CHECK build-arg: {exc.message}", hint=exc.hint
            ) from None
        # Errors name the directive's line, as every other error in the file does.
        line = next(n for key, _, n in parsed.directives if key == "check")
        raise DockerfileError(
            exc.message,
            source=SourceRange(parsed.filename, line, line),
            lines=parsed.lines,
            hint=exc.hint,
        ) from None
    error: DockerfileError | None = None
    df: Dockerfile | None
    try:
        df = load(parsed)
    except DockerfileError as exc:
        error, df = exc, _loadable_prefix(parsed, exc)
    findings = [
        Finding(w.rule, w.message, SourceRange(parsed.filename, w.start, w.end))
        for w in parsed.warnings
    ]
    if df is not None and error is not None:
        # As BuildKit: an instruction that does not parse stops the check after the rules
        # run while parsing, for the instructions before it.
        findings.extend(f for f in _static(df) if f.rule in PARSE_RULES)
    elif df is not None:
        findings.extend(_static(df))
        found, error = _resolved(df, target_platform, build_platform, args, target, dockerignore)
        findings.extend(found)
    per_line = {n.start: c for n in parsed.nodes if (c := _instruction_config(n.comments))}

    def kept(f: Finding) -> bool:
        if config.skips(f.rule):
            return False
        local = per_line.get(f.source.start) if f.source else None
        return local is None or not ("all" in local.skip or f.rule in local.skip)

    out = sorted(
        filter(kept, findings), key=lambda f: (f.source.start if f.source else 0, f.rule, f.message)
    )
    return CheckResult(parsed.filename, parsed.lines, tuple(out), config.error, error)


def _static(df: Dockerfile) -> list[Finding]:
    """The rules that read the instructions as written."""
    findings: list[Finding] = []
    current: list[int | None] = [None]

    def add(rule: str, message: str, rng: SourceRange | None) -> None:
        stage = current[0] if rule in DISPATCH_RULES else None
        findings.append(Finding(rule, message, rng, stage))

    # As BuildKit: casing counts FROM and stage instructions, words of one case only.
    every: list[ins.Instruction] = []
    for stage in df.stages:
        every.append(stage.from_)
        every.extend(stage.instructions)
    upper = sum(1 for i in every if i.keyword.isupper())
    lower = sum(1 for i in every if i.keyword.islower())
    majority = "lowercase" if lower > upper else "uppercase"
    for inst in every:
        kw = inst.keyword
        if (majority == "uppercase" and kw.upper() != kw) or (
            majority == "lowercase" and kw.lower() != kw
        ):
            add(
                "ConsistentInstructionCasing",
                f"Command '{kw}' should match the case of the command majority ({majority})",
                inst.source,
            )

    comments = {n.start: n.comments for n in df.parsed.nodes}

    def described(kind: str, keys: list[str], inst: ins.Instruction) -> None:
        # BuildKit reads the last comment line right above: it starts with the name.
        above = comments.get(inst.source.start, ())
        if not above or not keys or above[-1].split(" ")[0] in keys:
            return
        example = keys[0] if len(keys) == 1 else "<arg_key>"
        add(
            "InvalidDefinitionDescription",
            f"Comment for {kind} should follow the format: `# {example} <description>`",
            inst.source,
        )

    for meta in df.meta_args:
        described("ARG", [d.key for d in meta.args], meta)
    seen_names: dict[str, int] = {}
    shell_set: dict[int, bool] = {}
    workdir_set: dict[int, bool] = {}
    for stage in df.stages:
        current[0] = stage.index
        frm = stage.from_
        written = _written_stage_name(frm)
        if written and written != written.lower():
            add("StageNameCasing", f"Stage name '{written}' should be lowercase", frm.source)
        if frm.as_keyword and frm.keyword.isupper() != frm.as_keyword.isupper():
            add(
                "FromAsCasing",
                f"'{frm.as_keyword}' and '{frm.keyword}' keywords' casing do not match",
                frm.source,
            )
        if re.fullmatch(r"\$TARGETPLATFORM|\$\{TARGETPLATFORM\}", frm.platform):
            add(
                "RedundantTargetPlatform",
                f"Setting platform to predefined {frm.platform} in FROM is redundant as this "
                "is the default behavior",
                frm.source,
            )
        if frm.platform and "$" not in frm.platform:
            try:
                constant: Platform | None = Platform.parse(frm.platform)
            except BaleError:
                constant = None  # resolution reports it
            # A stage named for its platform (`AS linux`, `AS build_amd64`) means it.
            if (
                constant is not None
                and constant.os not in stage.name
                and (constant.architecture not in stage.name)
            ):
                add(
                    "FromPlatformFlagConstDisallowed",
                    f'FROM --platform flag should not use constant value "{frm.platform}"',
                    frm.source,
                )
        if stage.name:
            described("FROM", [stage.name], frm)
        if stage.name in RESERVED_STAGE_NAMES:
            add(
                "ReservedStageName",
                f'Stage name should not use the same name as reserved stage "{stage.name}"',
                frm.source,
            )
        if stage.name:
            if stage.name in seen_names:
                add(
                    "DuplicateStageName",
                    f'Duplicate stage name "{stage.name}", stage names should be unique',
                    frm.source,
                )
            seen_names[stage.name] = stage.index
        # A stage built on an earlier one inherits its SHELL and WORKDIR.
        parent = seen_names.get(frm.image.lower()) if frm.image.lower() != stage.name else None
        if parent is not None and parent >= stage.index:
            parent = None
        has_shell = shell_set.get(parent, False) if parent is not None else False
        has_workdir = workdir_set.get(parent, False) if parent is not None else False
        counts: dict[str, list[ins.Instruction]] = {}
        for inst in stage.instructions:
            if isinstance(inst, ins.Shell):
                has_shell = True
            if isinstance(inst, ins.Cmd | ins.Entrypoint | ins.Healthcheck):
                counts.setdefault(inst.name, []).append(inst)
            if isinstance(inst, ins.Cmd | ins.Entrypoint) and inst.prepend_shell and not has_shell:
                add(
                    "JSONArgsRecommended",
                    f"JSON arguments recommended for {inst.name} to prevent unintended "
                    "behavior related to OS signals",
                    inst.source,
                )
            if isinstance(inst, ins.Expose):
                for port in inst.ports:
                    ip, host, proto = _expose_parts(port)
                    if proto != proto.lower():
                        add(
                            "ExposeProtoCasing",
                            f"Defined protocol '{port}' in EXPOSE instruction should be lowercase",
                            inst.source,
                        )
                    if ip or host:
                        add(
                            "ExposeInvalidFormat",
                            "EXPOSE instruction should not define an IP address or host-port "
                            f"mapping, found '{port}'",
                            inst.source,
                        )
            if isinstance(inst, ins.Maintainer):
                add(
                    "MaintainerDeprecated",
                    "Maintainer instruction is deprecated in favor of using label",
                    inst.source,
                )
            if isinstance(inst, ins.Env | ins.Label) and inst.legacy:
                add(
                    "LegacyKeyValueFormat",
                    f'"{inst.name} key=value" should be used instead of legacy '
                    f'"{inst.name} key value" format',
                    inst.source,
                )
            if isinstance(inst, ins.Workdir):
                if not inst.path.startswith(("/", "$")) and not has_workdir:
                    add(
                        "WorkdirRelativePath",
                        f'Relative workdir "{inst.path}" can have unexpected results if the '
                        "base image changes",
                        inst.source,
                    )
                has_workdir = True
            names: list[str] = []
            kind = ""
            if isinstance(inst, ins.Arg):
                names, kind = [d.key for d in inst.args], "ARG"
                described("ARG", names, inst)
            elif isinstance(inst, ins.Env):
                names, kind = [p.key for p in inst.pairs], "ENV"
            for name in names:
                if _is_secret(name):
                    add(
                        "SecretsUsedInArgOrEnv",
                        f'Do not use ARG or ENV instructions for sensitive data ({kind} "{name}")',
                        inst.source,
                    )
        shell_set[stage.index] = has_shell
        workdir_set[stage.index] = has_workdir
        for name, items in counts.items():
            for inst in items[:-1]:
                add(
                    "MultipleInstructionsDisallowed",
                    f"Multiple {name} instructions should not be used in the same stage "
                    "because only the last one will be used",
                    inst.source,
                )
    return findings


def _default_bases(
    df: Dockerfile, target_platform: Platform, build_platform: Platform | None
) -> list[Finding]:
    """InvalidDefaultArgInFrom: each base name as the global ARG defaults alone make it."""
    lexer = Lexer(df.parsed.escape)
    env = platform_args(target_platform, build_platform or target_platform)
    found: list[Finding] = []
    try:
        for arg in df.meta_args:
            for d in arg.args:
                if d.value is not None:
                    env[d.key] = lexer.process_word(d.value, env)
        for stage in df.stages:
            name = lexer.process_word(stage.from_.image, env)
            try:
                Reference.parse(name)
            except BaleError:
                found.append(
                    Finding(
                        "InvalidDefaultArgInFrom",
                        f"Default value for ARG {stage.from_.image} results in empty or invalid "
                        "base image name",
                        stage.from_.source,
                    )
                )
    except ShellError:
        return found  # resolution reports the same error
    return found


def _resolved(
    df: Dockerfile,
    target_platform: Platform,
    build_platform: Platform | None,
    args: dict[str, str],
    target: str | None,
    ignore: DockerIgnore | None,
) -> tuple[list[Finding], DockerfileError | None]:
    """The rules that need the arguments expanded; the resolution error, if any."""
    findings = _default_bases(df, target_platform, build_platform)
    declared_meta = {d.key for a in df.meta_args for d in a.args}
    known = sorted(declared_meta | set(platform_args(target_platform, target_platform)))
    for name, rng in undefined_in_from(
        df, target_platform=target_platform, build_platform=build_platform, build_args=args
    ):
        findings.append(
            Finding(
                "UndefinedArgInFrom",
                f"FROM argument '{name}' is not declared"
                f"{suggest(name, known, case_sensitive=True)}",
                rng,
            )
        )
    try:
        build = resolve(
            df,
            target_platform=target_platform,
            build_platform=build_platform,
            build_args=args,
            target=target,
            all_stages=True,
        )
    except DockerfileError as exc:
        return findings, exc
    for resolved in build.stages:
        for name, rng in resolved.undefined:
            if name in PROXY_ARGS:
                continue
            seen = {k for step in resolved.steps for k, _ in step.build_env}
            seen.update(
                d.key
                for step in resolved.steps
                if isinstance(step.instruction, ins.Arg)
                for d in step.instruction.args
            )
            if resolved.platform.os != "windows":
                seen.add("PATH")  # every base has one (BuildKit sets the default if not)
            candidates = sorted(seen - {name})
            hint = suggest(name, candidates, case_sensitive=True)
            hint = hint.replace("did you mean ", "did you mean $")
            findings.append(
                Finding(
                    "UndefinedVar",
                    f"Usage of undefined variable '${name}'{hint}",
                    rng,
                    resolved.index,
                )
            )
        if ignore is None or ignore.has_exclusions:
            continue  # exclusions make a static answer unreliable, as BuildKit says
        for step in resolved.steps:
            inst = step.instruction
            if not isinstance(inst, ins.Copy) or (inst.from_ and not inst.is_add):
                continue
            verb = "Add" if inst.is_add else "Copy"
            for src in inst.sources:
                if "://" in src or (inst.is_add and src.startswith("git@")):
                    continue
                if _copy_ignored(src, ignore):
                    findings.append(
                        Finding(
                            "CopyIgnoredFile",
                            f'Attempting to {verb} file "{_clean(src)}" that is excluded by '
                            ".dockerignore",
                            inst.source,
                            resolved.index,
                        )
                    )
    return findings, None


def _clean(src: str) -> str:
    cleaned = posixpath.normpath(src)
    return cleaned.lstrip("/") if cleaned not in ("/", ".") else cleaned
