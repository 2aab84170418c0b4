"""Concurrency rounds (root only): in each round four builds run at once on one store while
`bale builder prune` and `bale store gc` run beside them. Every command must succeed, and
after the round the store check passes and nothing is left behind.

    python -m fuzz.concurrency [--rounds N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.harness import bale, busybox_context, leftovers, missing_fixtures, spawn

DOCKERFILE = """\
FROM scratch AS base
ARG TARGETARCH
COPY bin/busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base AS one
ARG N=0
RUN echo "one $N" > /one && ls /bin | wc -l > /count
COPY data /data

FROM base AS two
RUN --mount=type=cache,target=/cache echo two >> /cache/log && cp /cache/log /two

FROM one
ARG N=0
COPY --from=two /two /two
RUN cat /one /two > /both && echo "$N" > /n
"""


@dataclass
class RoundsSummary:
    seed: int
    rounds: int = 0
    commands: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _builds(rng: random.Random, round_no: int) -> list[list[str]]:
    out = []
    for i in range(4):
        args = ["build", "--progress", "plain", "-t", f"race/b{i}:{round_no}"]
        if i % 2:
            args += ["--platform", "linux/amd64,linux/arm64"]
        if rng.random() < 0.5:
            args.append("--no-cache")
        args += ["--build-arg", f"N={rng.randrange(3)}", "."]
        out.append(args)
    return out


def rounds(
    count: int, seed: int, work: Path | None = None, say: Callable[[str], None] = print
) -> RoundsSummary:
    say(f"concurrency: seed {seed}, {count} rounds of 4 builds + prune + gc")
    rng = random.Random(seed)
    summary = RoundsSummary(seed)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bale-rounds-", dir=work) as tmp:
        root = Path(tmp) / "root"
        ctx = busybox_context(Path(tmp) / "ctx", DOCKERFILE, files=200)
        for n in range(count):
            procs: list[tuple[list[str], subprocess.Popen[str]]] = []
            for args in _builds(rng, n):
                procs.append((args, spawn(root, *args, cwd=ctx)))
            time.sleep(rng.uniform(0.2, 2.0))  # prune and gc land while the builds run
            for args in (["builder", "prune", "-f"], ["store", "gc"]):
                procs.append((args, spawn(root, *args)))
            for args, proc in procs:
                try:
                    _, err = proc.communicate(timeout=600)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    _, err = proc.communicate()
                summary.commands += 1
                if proc.returncode != 0:
                    summary.failures.append(
                        f"round {n}: bale {' '.join(args)} exited {proc.returncode}:\n{err[-3000:]}"
                    )
            check = bale(root, "store", "check")
            if check.returncode != 0:
                summary.failures.append(f"round {n}: store check:\n{check.stdout}{check.stderr}")
            left = leftovers(root)
            if left:
                summary.failures.append(f"round {n}: left behind:\n  " + "\n  ".join(left))
            summary.rounds += 1
    summary.seconds = time.monotonic() - start
    for failure in summary.failures:
        say(f"FAILURE {failure}")
    say(
        f"concurrency: seed {seed}: {summary.rounds} rounds, {summary.commands} commands in "
        f"{summary.seconds:.0f}s, {len(summary.failures)} failures"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("concurrency: needs root (mounts, runc)", file=sys.stderr)
        return 2
    reason = missing_fixtures()
    if reason:
        print(f"concurrency: {reason}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    return 1 if rounds(args.rounds, seed).failures else 0


if __name__ == "__main__":
    sys.exit(main())
