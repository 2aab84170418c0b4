"""The Dockerfile fuzzer: generated Dockerfiles through parse → resolve → convert (and the
`--check` and `--call outline` paths), in process, each case under a time limit.

The only acceptable outcomes are success and a BaleError that locates the line (a
DockerfileError with its source range, or a message saying `line N`). Anything else — another
exception, a RecursionError, a case running over the limit, an error without a place — is a
finding: minimised (delta debugging over lines, then characters) and printed.

    python -m fuzz.dockerfile_fuzz [--cases N] [--seed S] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from bale.errors import BaleError, DockerfileError
from bale.frontends.dockerfile import parse, resolve
from bale.frontends.dockerfile.checks import check
from bale.frontends.dockerfile.convert import ConvertOptions, convert
from bale.frontends.dockerfile.outline import outline
from bale.frontends.graph import ResolvedImage
from bale.oci.config import ImageConfig, RuntimeConfig
from bale.oci.digest import Digest
from bale.oci.platform import Platform
from fuzz.grammar import case

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
_LINE = re.compile(r"\bline \d+")


class FakeBases:
    """Every base resolves without I/O; two have configs that exercise ONBUILD and USER."""

    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None:
        if ref.startswith("onbuild"):
            return RuntimeConfig(on_build=("RUN echo built", "ENV X=1", "COPY a /a"))
        if ref.startswith("user"):
            return RuntimeConfig(user="app", working_dir="/w", env=("A=1",))
        return RuntimeConfig()

    def image(self, ref: str, platform: Platform) -> ResolvedImage:
        config = self.base_config(ref, platform) or RuntimeConfig()
        return ResolvedImage(
            ref, Digest.of(f"{ref} {platform}".encode()), ImageConfig(platform, config)
        )


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so no `except Exception` in bale swallows it."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def pipeline(text: str) -> None:
    """What a build does with a Dockerfile before any step runs, for two platforms."""
    parsed = parse(text, "Dockerfile")
    bases = FakeBases()
    resolved = [
        resolve(parsed, target_platform=p, build_platform=AMD64, base_configs=bases)
        for p in (AMD64, ARM64)
    ]
    convert(resolved, bases, ConvertOptions(native=frozenset({str(AMD64)})))
    check(parsed, target_platform=AMD64)
    outline(parsed, target_platform=AMD64)


def located(exc: BaleError) -> bool:
    if isinstance(exc, DockerfileError) and exc.source is not None and exc.source.start >= 1:
        return True
    return bool(_LINE.search(str(exc)))


@dataclass(frozen=True)
class Finding:
    kind: str  # "exception", "unlocated", "timeout"
    what: str  # the exception type (and for unlocated, the message's start)
    detail: str  # traceback or message

    @property
    def signature(self) -> tuple[str, str]:
        return (self.kind, self.what)


def run_case(text: str, timeout: int = 10, run: Callable[[str], None] = pipeline) -> Finding | None:
    try:
        with time_limit(timeout):
            run(text)
    except CaseTimeout:
        return Finding("timeout", f"over {timeout}s", "")
    except BaleError as exc:
        if located(exc):
            return None
        return Finding("unlocated", type(exc).__name__, str(exc)[:500])
    except RecursionError:
        return Finding("exception", "RecursionError", traceback.format_exc(limit=-8))
    except Exception as exc:
        return Finding("exception", type(exc).__name__, traceback.format_exc(limit=-8))
    return None


def ddmin(items: list[str], fails: Callable[[list[str]], bool], budget: float) -> list[str]:
    """Zeller's delta debugging: a 1-minimal sublist of `items` that still fails (or the
    smallest found before the time budget runs out)."""
    deadline = time.monotonic() + budget
    n = 2
    while len(items) >= 2 and time.monotonic() < deadline:
        chunk = max(1, len(items) // n)
        subsets = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        reduced = False
        for i in range(len(subsets)):
            complement = [x for j, s in enumerate(subsets) if j != i for x in s]
            if fails(subsets[i]):
                items, n, reduced = subsets[i], 2, True
                break
            if fails(complement):
                items, n, reduced = complement, max(n - 1, 2), True
                break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), n * 2)
    return items


def minimise(
    text: str,
    finding: Finding,
    timeout: int = 10,
    budget: float = 120,
    run: Callable[[str], None] = pipeline,
) -> str:
    """The smallest text (lines first, then characters) giving the same kind of finding."""
    limit = min(timeout, 3) if finding.kind == "timeout" else timeout

    def same(candidate: str) -> bool:
        got = run_case(candidate, limit, run)
        return got is not None and got.signature == finding.signature

    lines = ddmin(text.split("\n"), lambda ls: same("\n".join(ls)), budget / 2)
    chars = ddmin(list("\n".join(lines)), lambda cs: same("".join(cs)), budget / 2)
    return "".join(chars)


def _shown(text: str, limit: int = 1500) -> str:
    shown = repr(text)
    if len(shown) <= limit:
        return shown
    return f"{shown[: limit // 2]} ...[{len(shown) - limit} more]... {shown[-limit // 2 :]}"


def report(index: int, seed: int, text: str, finding: Finding, small: str) -> str:
    return (
        f"FINDING case {index} (seed {seed}): {finding.kind} {finding.what}\n"
        f"minimised Dockerfile ({len(small)} chars):\n{_shown(small)}\n"
        f"{finding.detail.rstrip()}\n"
    )


@dataclass
class Summary:
    seed: int
    cases: int = 0
    ok: int = 0
    located_errors: int = 0
    findings: list[str] | None = None
    seconds: float = 0.0


def fuzz(
    cases: int,
    seed: int,
    timeout: int = 10,
    out: Callable[[str], None] = print,
    minimise_budget: float = 60,
) -> Summary:
    """Run `cases` generated Dockerfiles; each distinct finding is minimised and printed once."""
    out(f"dockerfile fuzz: seed {seed}, {cases} cases")
    summary = Summary(seed, findings=[])
    seen: set[tuple[str, str]] = set()
    start = time.monotonic()
    limit = sys.getrecursionlimit()
    for index in range(cases):
        text = case(seed, index)
        finding = run_case(text, timeout)
        sys.setrecursionlimit(limit)
        summary.cases += 1
        if finding is None:
            summary.ok += 1
            continue
        assert summary.findings is not None
        if finding.signature in seen:
            summary.findings.append(f"case {index}: {finding.kind} {finding.what} (as before)")
            continue
        seen.add(finding.signature)
        small = minimise(text, finding, timeout, minimise_budget)
        text_report = report(index, seed, text, finding, small)
        summary.findings.append(text_report)
        out(text_report)
    summary.seconds = time.monotonic() - start
    assert summary.findings is not None
    out(
        f"dockerfile fuzz: seed {seed}: {summary.cases} cases in {summary.seconds:.1f}s, "
        f"{len(summary.findings)} findings"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    p.add_argument("--timeout", type=int, default=10, help="seconds per case")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    summary = fuzz(args.cases, seed, args.timeout)
    return 1 if summary.findings else 0


if __name__ == "__main__":
    sys.exit(main())
