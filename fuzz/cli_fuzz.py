"""Generated Dockerfiles through the CLI as a user runs it: `bale build --call outline`, `--call
check`, and (every fourth case) a real build with every base replaced by `scratch`, its
result written to a tar that is thrown away.

A case passes when bale exits 0, or exits non-zero with an error that names the line
(`Dockerfile:N` or `line N`) and neither `internal error` nor `Traceback` on its output,
within the time limit.

    python -m fuzz.cli_fuzz [--cases N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.grammar import case

_FROM = re.compile(r"^(\s*FROM\s+(?:--\S+\s+)*)(\S+)", re.IGNORECASE | re.MULTILINE)
_LOCATED = re.compile(r"Dockerfile:\d+|\bline \d+")
MODES = ("outline", "check", "outline", "build")


def scratch_bases(text: str) -> str:
    """Every FROM on `scratch`: the build needs no registry and no network."""
    return _FROM.sub(lambda m: m.group(1) + "scratch", text)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}


@dataclass(frozen=True)
class CliResult:
    mode: str
    code: int | None  # None: killed at the time limit
    stderr: str


def run_cli(text: str, mode: str, work: Path, timeout: float = 60) -> CliResult:
    ctx = work / "ctx"
    if ctx.exists():
        shutil.rmtree(ctx)
    ctx.mkdir(parents=True)
    (ctx / "a").write_text("a\n")
    if mode == "build":
        text = scratch_bases(text)
    (ctx / "Dockerfile").write_bytes(text.encode("utf-8", "replace"))
    argv = [sys.executable, "-m", "bale", "--root", str(work / "root"), "build"]
    if mode == "build":
        argv += ["--progress", "plain", "-o", f"type=tar,dest={work / 'out.tar'}"]
    else:
        argv += ["--call", mode]
    try:
        proc = subprocess.run(
            [*argv, str(ctx)],
            capture_output=True,
            text=True,
            errors="replace",
            env=_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return CliResult(mode, None, err)
    return CliResult(mode, proc.returncode, proc.stderr)


def problem(result: CliResult) -> str | None:
    """What is wrong with a CLI run, or None."""
    if result.code is None:
        return "hang: killed at the time limit"
    if "internal error" in result.stderr or "Traceback" in result.stderr:
        return "internal error"
    if result.code == 0:
        return None
    if not _LOCATED.search(result.stderr):
        return "error without a line"
    return None


@dataclass
class CliSummary:
    seed: int
    cases: int = 0
    findings: list[str] = field(default_factory=list)
    by_mode: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def cli_fuzz(
    cases: int, seed: int, timeout: float = 60, say: Callable[[str], None] = print
) -> CliSummary:
    say(f"cli fuzz: seed {seed}, {cases} cases")
    summary = CliSummary(seed)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bale-cli-fuzz-") as tmp:
        work = Path(tmp)
        for index in range(cases):
            text = case(seed, index)
            mode = MODES[index % len(MODES)]
            result = run_cli(text, mode, work, timeout)
            summary.cases += 1
            summary.by_mode[mode] = summary.by_mode.get(mode, 0) + 1
            what = problem(result)
            if what is not None:
                report = (
                    f"FINDING cli case {index} (seed {seed}, {mode}): {what}\n"
                    f"Dockerfile: {text[:2000]!r}\n"
                    f"stderr (last 3000 chars):\n{result.stderr[-3000:]}"
                )
                summary.findings.append(report)
                say(report)
            if index % 500 == 499:  # a long run's store is not left to grow without end
                shutil.rmtree(work / "root", ignore_errors=True)
    summary.seconds = time.monotonic() - start
    say(
        f"cli fuzz: seed {seed}: {summary.cases} cases {summary.by_mode} in "
        f"{summary.seconds:.1f}s, {len(summary.findings)} findings"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    return 1 if cli_fuzz(args.cases, seed).findings else 0


if __name__ == "__main__":
    sys.exit(main())
