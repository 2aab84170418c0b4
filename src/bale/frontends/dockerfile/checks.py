"""`--check`: BuildKit's Dockerfile lint rules that users rely on.

The `# check=skip=Rule1,Rule2;error=true` directive (or the BUILDKIT_DOCKERFILE_CHECK build
arg) skips rules (`skip=all` skips all) and turns findings into errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bale.errors import DockerfileError, SourceRange
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.parser import ParsedDockerfile, parse, suggest
from bale.frontends.dockerfile.resolve import PROXY_ARGS, platform_args, resolve
from bale.frontends.dockerfile.stages import load
from bale.oci.platform import Platform

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
    "LegacyKeyValueFormat": "Legacy key/value format with whitespace separator should not "
    "be used",
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
}
_SECRET = re.compile(
    r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pass|pword|passwd|secret"
    r"|token)(?:_|$)"
)
_PUBLIC = re.compile(r"(?i)(?:_|^)(?:public)(?:_|$)")


def rule_url(rule: str) -> str:
    kebab = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", rule).lower()
    return f"https://docs.docker.com/go/dockerfile/rule/{kebab}/"


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    source: SourceRange | None

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

    @property
    def failed(self) -> bool:
        return self.error_on_findings and bool(self.findings)


@dataclass(frozen=True)
class CheckConfig:
    skip: frozenset[str] = frozenset()
    error: bool = False

    @classmethod
    def parse(cls, text: str) -> CheckConfig:
        skip: set[str] = set()
        error = False
        for part in text.split(";"):
            key, _, value = part.strip().partition("=")
            key = key.strip().lower()
            if key == "skip":
                skip.update(v.strip() for v in value.split(",") if v.strip())
            elif key == "error":
                error = value.strip().lower() == "true"
            elif key:
                raise DockerfileError(
                    f"invalid check directive key {key!r}", hint="use skip=RULE,... or error=true"
                )
        return cls(frozenset(skip), error)


def _is_secret(name: str) -> bool:
    return bool(_SECRET.search(name)) and not _PUBLIC.search(name)


def _written_stage_name(frm: ins.From) -> str:
    words = frm.original.split()
    return words[-1] if frm.stage_name and words else ""


def check(
    source: str | ParsedDockerfile,
    *,
    filename: str = "Dockerfile",
    target_platform: Platform,
    build_platform: Platform | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
) -> CheckResult:
    """Lint a Dockerfile. Parse and resolution errors are raised as DockerfileError."""
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
    df = load(parsed)
    findings: list[Finding] = []

    def add(rule: str, message: str, rng: SourceRange | None) -> None:
        findings.append(Finding(rule, message, rng))

    for warning in parsed.warnings:
        add(warning.rule, warning.message, SourceRange(parsed.filename, warning.start, warning.end))

    every: list[ins.Instruction] = [*df.meta_args]
    for stage in df.stages:
        every.append(stage.from_)
        every.extend(stage.instructions)
    upper = sum(1 for i in every if i.keyword.isupper())
    lower = sum(1 for i in every if i.keyword.islower())
    majority = "uppercase" if upper >= lower else "lowercase"
    for inst in every:
        kw = inst.keyword
        if (majority == "uppercase" and not kw.isupper()) or (
            majority == "lowercase" and not kw.islower()
        ):
            add("ConsistentInstructionCasing",
                f"Command '{kw}' should match the case of the command majority ({majority})",
                inst.source)

    seen_names: dict[str, int] = {}
    for stage in df.stages:
        frm = stage.from_
        written = _written_stage_name(frm)
        if written and written != written.lower():
            add("StageNameCasing", f"Stage name '{written}' should be lowercase", frm.source)
        if frm.as_keyword and frm.keyword.isupper() != frm.as_keyword.isupper():
            add("FromAsCasing",
                f"'{frm.as_keyword}' and '{frm.keyword}' keywords' casing do not match",
                frm.source)
        if frm.platform in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
            add("RedundantTargetPlatform",
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this "
                "is the default behavior", frm.source)
        if frm.platform and "$" not in frm.platform:
            add("FromPlatformFlagConstDisallowed",
                f'FROM --platform flag should not use constant value "{frm.platform}"',
                frm.source)
        if stage.name in ("scratch", "context"):
            add("ReservedStageName",
                f"'{stage.name}' is reserved and should not be used as a stage name", frm.source)
        if stage.name:
            if stage.name in seen_names:
                add("DuplicateStageName",
                    f'Duplicate stage name "{stage.name}", stage names should be unique',
                    frm.source)
            seen_names[stage.name] = stage.index
        counts: dict[str, list[ins.Instruction]] = {}
        workdir_set = False
        for inst in stage.instructions:
            if isinstance(inst, ins.Cmd | ins.Entrypoint | ins.Healthcheck):
                counts.setdefault(inst.name, []).append(inst)
            if isinstance(inst, ins.Cmd | ins.Entrypoint) and inst.prepend_shell:
                add("JSONArgsRecommended",
                    f"JSON arguments recommended for {inst.name} to prevent unintended "
                    "behavior related to OS signals", inst.source)
            if isinstance(inst, ins.Expose):
                for port in inst.ports:
                    proto = port.partition("/")[2]
                    if proto and proto != proto.lower():
                        add("ExposeProtoCasing",
                            f"Defined protocol '{port}' in EXPOSE instruction should be "
                            "lowercase", inst.source)
            if isinstance(inst, ins.Maintainer):
                add("MaintainerDeprecated",
                    "Maintainer instruction is deprecated in favor of using label", inst.source)
            if isinstance(inst, ins.Env | ins.Label) and inst.legacy:
                add("LegacyKeyValueFormat",
                    f'"{inst.name} key=value" should be used instead of legacy '
                    f'"{inst.name} key value" format', inst.source)
            if isinstance(inst, ins.Workdir):
                if not inst.path.startswith(("/", "$")) and not workdir_set:
                    add("WorkdirRelativePath",
                        f'Relative workdir "{inst.path}" can have unexpected results if the '
                        "base image changes", inst.source)
                workdir_set = True
            names: list[str] = []
            if isinstance(inst, ins.Arg):
                names = [d.key for d in inst.args]
                kind = "ARG"
            elif isinstance(inst, ins.Env):
                names = [p.key for p in inst.pairs]
                kind = "ENV"
            for name in names:
                if _is_secret(name):
                    add("SecretsUsedInArgOrEnv",
                        "Do not use ARG or ENV instructions for sensitive data "
                        f'({kind} "{name}")', inst.source)
        for name, items in counts.items():
            for inst in items[:-1]:
                add("MultipleInstructionsDisallowed",
                    f"Multiple {name} instructions should not be used in the same stage "
                    "because only the last one will be used", inst.source)
    for meta in df.meta_args:
        for d in meta.args:
            if _is_secret(d.key):
                add("SecretsUsedInArgOrEnv",
                    f'Do not use ARG or ENV instructions for sensitive data (ARG "{d.key}")',
                    meta.source)

    build = resolve(df, target_platform=target_platform, build_platform=build_platform,
                    build_args=args, target=target, all_stages=True)
    declared_meta = {d.key for a in df.meta_args for d in a.args}
    known = sorted(declared_meta | set(platform_args(target_platform, target_platform)))
    for name, rng in build.undefined_in_from:
        add("UndefinedArgInFrom",
            f"FROM argument '{name}' is not declared{suggest(name, known)}", rng)
    for resolved in build.stages:
        for name, rng in resolved.undefined:
            if name in PROXY_ARGS:
                continue
            seen = {k for step in resolved.steps for k, _ in step.build_env}
            seen.update(
                d.key for step in resolved.steps if isinstance(step.instruction, ins.Arg)
                for d in step.instruction.args
            )
            candidates = sorted(seen - {name})
            hint = suggest(name, candidates).replace("did you mean ", "did you mean $")
            add("UndefinedVar", f"Usage of undefined variable '${name}'{hint}", rng)

    kept = [f for f in findings if "all" not in config.skip and f.rule not in config.skip]
    kept.sort(key=lambda f: (f.source.start if f.source else 0, f.rule))
    return CheckResult(parsed.filename, parsed.lines, tuple(kept), config.error)
