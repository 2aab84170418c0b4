"""`bale build`: buildx's flag set; `--check` and `--call outline|targets` run here.

`request_from_args` turns the parsed flags into a `BuildRequest`; `build_run.run` is where
the build takes over.
"""

from __future__ import annotations

import argparse
import atexit
import io
import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bale.builder.remotecache.spec import CacheSpec, parse_cache_spec
from bale.cli import attest_flags, compat_flags, output_flags, run_flags
from bale.cli.common import table
from bale.cli.render_error import snippet
from bale.cli.tar_extract import extract_confined
from bale.errors import DockerfileError, InvalidArgument
from bale.frontends.dockerfile.parser import ParsedDockerfile
from bale.frontends.load import DockerfileSource, dockerfiles_for, read_dockerfile
from bale.oci.platform import Platform, host_platform, require_known
from bale.oci.reference import Reference
from bale.trees import remove_tree

if TYPE_CHECKING:
    from bale.frontends.dockerfile.checks import CheckResult
    from bale.frontends.dockerfile.outline import Outline, TargetInfo

CALLS = ("build", "check", "outline", "targets")
PROGRESS = ("auto", "tty", "plain", "quiet", "rawjson", "none")


@dataclass(frozen=True)
class BuildRequest:
    """Everything `bale build` was asked, validated; paths are as given on the command line."""

    context: Path
    dockerfile: DockerfileSource
    platforms: tuple[Platform, ...]
    tags: tuple[str, ...]
    build_args: dict[str, str]
    template_vars: dict[str, str]
    target: str | None
    call: str
    labels: dict[str, str]
    network: str
    secrets: tuple[str, ...]
    ssh: tuple[str, ...]
    outputs: tuple[str, ...]
    build_contexts: dict[str, str]
    load: bool
    push: bool
    no_cache: bool
    no_cache_filter: tuple[str, ...]
    pull: bool
    iidfile: str | None
    metadata_file: str | None
    progress: str
    quiet: bool
    jobs: int | None
    attest: tuple[str, ...] = ()
    provenance: str = ""
    sbom: str = ""
    verify_reproducible: bool = False
    cache_from: tuple[CacheSpec, ...] = ()
    cache_to: tuple[CacheSpec, ...] = ()
    annotations: tuple[str, ...] = ()
    run: run_flags.RunFlags = field(default_factory=run_flags.RunFlags)
    report: str = ""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="build an image from a Dockerfile (docker buildx build)")
    p.add_argument("context", metavar="PATH", help="build context directory")
    p.add_argument("-f", "--file", help="Dockerfile path (default: PATH/Dockerfile; - for stdin)")
    p.add_argument(
        "--platform",
        action="append",
        default=[],
        help="target platform(s), comma-separated or repeated; 'local' for the host",
    )
    p.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image")
    p.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="build-time variable (KEY alone takes it from the environment)",
    )
    p.add_argument("--target", help="stage to build")
    p.add_argument("--check", action="store_true", help="check the Dockerfile (--call check)")
    p.add_argument("--call", default="build", help="build, check, outline or targets")
    p.add_argument("--frontend", help="dockerfile or jinja (default: by file suffix)")
    p.add_argument(
        "--template-var",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="variable for a Jinja2 template (NAME alone takes it from the env)",
    )
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--network", default="default", help="RUN network: default, none or host")
    p.add_argument("--secret", action="append", default=[], metavar="id=ID,src=PATH|env=VAR")
    p.add_argument("--ssh", action="append", default=[], metavar="default|ID[=SOCKET|KEY]")
    p.add_argument("-o", "--output", action="append", default=[], metavar="type=TYPE,...")
    p.add_argument("--build-context", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--load", action="store_true", help="load the result into the store")
    p.add_argument("--push", action="store_true", help="push the result (type=registry)")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-cache-filter", action="append", default=[], metavar="STAGE")
    p.add_argument("--pull", action="store_true", help="always look for newer base images")
    p.add_argument("--iidfile", help="write the image id to this file")
    p.add_argument("--metadata-file", help="write build metadata (JSON) to this file")
    p.add_argument(
        "--progress",
        default=None,
        metavar="|".join(PROGRESS),
        help="progress output (env BUILDKIT_PROGRESS; default auto)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("--jobs", type=int, default=None, help="parallel steps (default: cores)")
    attest_flags.register(p)
    output_flags.register(p)
    run_flags.register(p)
    compat_flags.register(p)
    p.add_argument(
        "--verify-reproducible",
        action="store_true",
        help="build twice in fresh stores and compare (needs SOURCE_DATE_EPOCH)",
    )
    p.add_argument(
        "--cache-from",
        action="append",
        default=[],
        metavar="type=TYPE,...|REF",
        help="import build cache: type=registry,ref=REF or type=local,src=DIR",
    )
    p.add_argument(
        "--cache-to",
        action="append",
        default=[],
        metavar="type=TYPE,...|REF",
        help="export build cache: type=registry,ref=REF, type=local,dest=DIR, "
        "type=inline; mode=min|max, cache-mounts=ID;ID|all",
    )
    p.add_argument(
        "--report",
        default="",
        metavar="FILE",
        help="write the build's HTML report here, success or failure",
    )
    p.add_argument(
        "--strict-platforms",
        action="store_true",
        help="refuse, before any work, a platform no node builds natively",
    )
    p.set_defaults(func=cmd_build)


def _key_values(items: list[str], what: str, from_env: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, has_value, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {item!r}", hint=f"use {what} KEY=VALUE")
        if has_value:
            out[key] = value
        elif from_env:
            if key in os.environ:
                out[key] = os.environ[key]
        else:
            raise InvalidArgument(f"invalid {what} {item!r}", hint=f"use {what} KEY=VALUE")
    return out


def parse_platforms(values: list[str]) -> tuple[Platform, ...]:
    out: list[Platform] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            platform = require_known(Platform.parse(part))
            if platform not in out:
                out.append(platform)
    return tuple(out) or (host_platform(),)


def stdin_context(file: str | None) -> tuple[Path, str | None]:
    """`bale build -`: stdin is a tar of the context (with its Dockerfile), or the Dockerfile
    itself with an empty context, as `docker build -` reads it. Returns the context directory
    and, for a bare Dockerfile, the path `-f` should take."""
    if file == "-":
        raise InvalidArgument("the Dockerfile and the context cannot both come from stdin")
    data = sys.stdin.buffer.read()
    directory = Path(tempfile.mkdtemp(prefix="bale-stdin-context-"))
    atexit.register(remove_tree, directory, ignore_errors=True)
    if _is_tar(data):
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                extract_confined(tar, directory)  # no names outside, no devices
        except (tarfile.TarError, OSError) as exc:
            raise InvalidArgument(f"unable to read the context tar from stdin: {exc}") from None
        return directory, None
    dockerfile = directory.parent / f"{directory.name}.Dockerfile"
    dockerfile.write_bytes(data)
    atexit.register(dockerfile.unlink, True)
    return directory, str(dockerfile)


def _is_tar(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:4] == b"\x28\xb5\x2f\xfd":
        return True  # a compressed context
    return len(data) >= 512 and data[257:262] == b"ustar"


def progress_mode(flag: str | None) -> str:
    """--progress, else BUILDKIT_PROGRESS, else auto; `none` shows nothing (as quiet)."""
    mode = (flag or os.environ.get("BUILDKIT_PROGRESS") or "auto").lower()
    if mode not in PROGRESS:
        source = "--progress" if flag else "BUILDKIT_PROGRESS"
        raise InvalidArgument(
            f"invalid progress mode {mode!r} from {source}", hint="use " + ", ".join(PROGRESS)
        )
    return "quiet" if mode == "none" else mode


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    compat_flags.check(args)
    call = "check" if args.check else args.call.lower()
    if call not in CALLS:
        raise InvalidArgument(f"unknown --call {args.call!r}", hint="use " + ", ".join(CALLS))
    if args.jobs is not None and args.jobs < 1:
        raise InvalidArgument("--jobs must be at least 1")
    if args.context == "-":
        context, stdin_file = stdin_context(args.file)
        if stdin_file is not None:
            args.file = stdin_file
    else:
        context = Path(args.context)
    if not context.is_dir():
        raise InvalidArgument(f"unable to prepare context: path {args.context!r} not found")
    for tag in args.tag:
        # Checked before any work, as buildx does: a bad name must not cost a whole build.
        try:
            Reference.parse(tag)
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid tag {tag!r}: {exc.message}", hint=exc.hint) from None
    build_args = _key_values(args.build_arg, "--build-arg", True)
    template_vars = _key_values(args.template_var, "--template-var", True)
    return BuildRequest(
        context=context,
        dockerfile=read_dockerfile(context, args.file, args.frontend),
        platforms=parse_platforms(args.platform),
        tags=tuple(args.tag),
        build_args=build_args,
        template_vars=template_vars,
        target=args.target,
        call=call,
        labels=_key_values(args.label, "--label", False),
        network=args.network,
        secrets=tuple(args.secret),
        ssh=tuple(args.ssh),
        outputs=tuple(args.output),
        build_contexts=_key_values(args.build_context, "--build-context", False),
        load=args.load,
        push=args.push,
        no_cache=args.no_cache,
        no_cache_filter=tuple(args.no_cache_filter),
        pull=args.pull,
        iidfile=args.iidfile,
        metadata_file=args.metadata_file,
        progress=progress_mode(args.progress),
        quiet=args.quiet,
        jobs=args.jobs,
        attest=tuple(args.attest),
        provenance=args.provenance,
        sbom=args.sbom,
        cache_from=tuple(parse_cache_spec(v, "--cache-from") for v in args.cache_from),
        cache_to=tuple(parse_cache_spec(v, "--cache-to") for v in args.cache_to),
        verify_reproducible=args.verify_reproducible,
        annotations=tuple(args.annotation),
        run=run_flags.parse_run_flags(args),
        report=args.report,
    )


def format_check(result: CheckResult) -> str:
    count = len(result.findings)
    if count == 0:
        return "Check complete, no warnings found."
    noun = "warning has" if count == 1 else "warnings have"
    out = [f"Check complete, {count} {noun} been found!", ""]
    for finding in result.findings:
        out.append(f"WARNING: {finding.rule} - {finding.url}")
        out.append(finding.message)
        if finding.source is not None and finding.source.start <= len(result.lines):
            out.extend(snippet(finding.source, result.lines))
        out.append("")
    return "\n".join(out).rstrip("\n")


def format_outline(o: Outline) -> str:
    out = [f"TARGET:      {o.name or '(default)'}"]
    if o.description:
        out.append(f"DESCRIPTION: {o.description}")
    if o.args:
        out.append("")
        rows = [("BUILD ARG", "VALUE", "DESCRIPTION")]
        rows += [(a.name, a.value or "", a.description) for a in o.args]
        out.extend(table(rows).splitlines())
    if o.secrets:
        out.append("")
        pairs = [("SECRET", "REQUIRED")]
        pairs += [(s.id, "true" if s.required else "") for s in o.secrets]
        out.extend(table(pairs).splitlines())
    if o.ssh:
        out.append("")
        pairs = [("SSH", "REQUIRED")]
        pairs += [(s.id, "true" if s.required else "") for s in o.ssh]
        out.extend(table(pairs).splitlines())
    return "\n".join(out)


def format_targets(items: list[TargetInfo]) -> str:
    rows = [("TARGET", "DESCRIPTION")]
    rows += [
        (" ".join(filter(None, (t.name, "(default)" if t.default else ""))), t.description)
        for t in items
    ]
    return table(rows)


def _build(
    args: argparse.Namespace, request: BuildRequest, files: dict[Platform, ParsedDockerfile]
) -> int:
    # The builder is imported only for a build: --check and --call never load it.
    if request.verify_reproducible:
        from bale.cli import build_verify

        return build_verify.verify(args, request, files)
    from bale.cli.nodes.select import remote_builder

    builder = remote_builder(args, request.platforms)
    if builder is not None:
        from bale.cli.nodes import coordinator

        return coordinator.run(args, request, files, builder)
    from bale.cli import build_run

    return build_run.run(args, request, files)


def cmd_build(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    try:
        files = dockerfiles_for(
            request.dockerfile,
            request.platforms,
            build_args=request.build_args,
            template_vars=request.template_vars,
        )
    except DockerfileError as exc:
        if request.call == "build" and not request.verify_reproducible:
            from bale.cli import build_run

            build_run.record_failure(args, request, exc)
        raise
    if request.call == "build":
        return _build(args, request, files)
    text, status, error = run_call(request, files)
    print(text)
    if error is not None:
        raise error
    return status


def run_call(
    request: BuildRequest, files: dict[Platform, ParsedDockerfile]
) -> tuple[str, int, DockerfileError | None]:
    """`--call check|outline|targets`: what it prints, its exit status (1 when the check
    finds something, as buildx) and the error to end with."""
    # Lint and introspection modules are imported only for the calls that use them.
    from bale.frontends.dockerfile.checks import check
    from bale.frontends.dockerfile.outline import outline, targets

    if request.call == "check":
        from bale.frontends.dockerignore import load_ignore

        ignore = load_ignore(request.context, request.dockerfile.path)
        shown: set[tuple[str, ...]] = set()
        out, status, error = [], 0, None
        for platform, parsed in files.items():
            if parsed.lines in shown:  # a template that renders alike is checked once
                continue
            shown.add(parsed.lines)
            result = check(
                parsed,
                target_platform=platform,
                build_args=request.build_args,
                target=request.target,
                dockerignore=ignore,
            )
            if result.findings or result.error is None:
                out.append(format_check(result))
            status = 1 if result.findings else status
            message = result.error_message
            if error is None and message is not None:
                first = result.findings[0].source if result.findings else None
                error = result.error or DockerfileError(message, source=first, lines=result.lines)
        return "\n".join(out), status, error
    platform = request.platforms[0]
    parsed = files[platform]
    if request.call == "targets":
        return format_targets(targets(parsed)), 0, None
    return (
        format_outline(
            outline(
                parsed,
                target=request.target,
                build_args=request.build_args,
                target_platform=platform,
            )
        ),
        0,
        None,
    )
