"""The kill loop (root only): SIGKILL bale at random moments of builds (RUN steps on the
busybox fixtures with a secret mount and heredocs, a COPY of many files, a two-platform
build), loads, gc and prune. After each kill the next command runs (`bale store check`, which
reclaims what the dead process left, as every command opening the store does), then:

- the store check passes;
- no mounts remain under the state directory or in a dead build's step directory
  (/proc/self/mountinfo);
- no step or heredoc directories (or secret files) of dead builds remain in /dev/shm or the
  store's executor directory;
- no runc containers and no processes (runc, qemu, a step's) remain;
- a follow-up build succeeds.

    python -m fuzz.killloop [--kills N] [--seed S] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.harness import bale, busybox_context, leftovers, missing_fixtures, spawn

SECRET = "kill-loop-secret-value-5ee1"

RUN_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY bin/busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN --mount=type=secret,id=tok test -s /run/secrets/tok && sleep 0.2 && echo $$ > /r1
RUN <<EOF
sleep 0.2
echo heredoc > /r2
EOF
COPY data /data
RUN --mount=type=cache,target=/cache ls /data | wc -l > /count
"""

COPY_DOCKERFILE = """\
FROM scratch
COPY data /data
COPY data /again
"""


@dataclass
class Op:
    name: str
    args: Callable[[], list[str]]
    cwd: Path | None = None
    seconds: float = 1.0  # how long it takes unkilled: kills land in [0, seconds]


@dataclass
class KillSummary:
    seed: int
    kills: int = 0
    by_op: dict[str, int] = field(default_factory=dict)
    finished_before_kill: int = 0
    # Kills after which something was left (before the next command reclaimed it): the
    # loop is reaching the moments that matter.
    dirty_after_kill: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


class KillLoop:
    def __init__(self, work: Path, rng: random.Random, say: Callable[[str], None]) -> None:
        self.work = work
        self.root = work / "root"
        self.rng = rng
        self.say = say
        secret = work / "secret.txt"
        secret.write_text(SECRET)
        self.run_ctx = busybox_context(work / "run-ctx", RUN_DOCKERFILE, files=50)
        self.copy_ctx = busybox_context(work / "copy-ctx", COPY_DOCKERFILE, files=800)
        self.archive = work / "image.tar"
        self.count = 0
        sec = ["--secret", f"id=tok,src={secret}"]

        def run_build(platforms: str) -> Callable[[], list[str]]:
            def args() -> list[str]:
                self.count += 1
                extra = ["--no-cache"] if self.rng.random() < 0.6 else []
                return [
                    "build", "--progress", "plain", "--platform", platforms, *sec, *extra,
                    "-t", f"kill/run:{self.count}", ".",
                ]  # fmt: skip

            return args

        def copy_build() -> list[str]:
            self.count += 1
            return ["build", "--progress", "plain", "--no-cache", "-t", f"kill/copy:{self.count}",
                    "."]  # fmt: skip

        self.ops = [
            Op("build-run", run_build("linux/amd64"), self.run_ctx),
            Op("load", lambda: ["load", "-i", str(self.archive)]),
            Op("build-two-platforms", run_build("linux/amd64,linux/arm64"), self.run_ctx),
            Op("build-copy", copy_build, self.copy_ctx),
            Op("gc", lambda: ["store", "gc"]),
            Op("prune", lambda: ["builder", "prune", "-f"]),
        ]

    def must(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        proc = bale(self.root, *args, cwd=cwd)
        if proc.returncode != 0:
            raise RuntimeError(f"bale {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def prepare(self) -> None:
        """Run each operation once to completion: the store has something in it, and each
        operation's duration bounds when its kills land."""
        for op in self.ops:
            start = time.monotonic()
            self.must(*op.args(), cwd=op.cwd)
            op.seconds = max(0.3, time.monotonic() - start)
            self.say(f"  {op.name}: {op.seconds:.1f}s unkilled")
            if op.name == "build-run":  # what the load operation loads
                self.must("save", "-o", str(self.archive), f"kill/run:{self.count}")

    def kill_once(self, summary: KillSummary) -> None:
        op = self.rng.choice(self.ops)
        delay = self.rng.uniform(0.05, op.seconds)
        proc = spawn(self.root, *op.args(), cwd=op.cwd)
        try:
            proc.wait(timeout=delay)
            summary.finished_before_kill += 1
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # bale itself: its children are orphaned
            proc.wait()
        proc.communicate()
        summary.kills += 1
        summary.by_op[op.name] = summary.by_op.get(op.name, 0) + 1
        where = f"kill {summary.kills} ({op.name} at {delay:.2f}s)"
        if leftovers(self.root):
            summary.dirty_after_kill += 1
        check = bale(self.root, "store", "check")
        if check.returncode != 0:
            summary.failures.append(f"{where}: store check failed:\n{check.stdout}{check.stderr}")
        left = leftovers(self.root)
        if left:
            summary.failures.append(f"{where}: left behind:\n  " + "\n  ".join(left))
        follow = bale(self.root, "build", "--progress", "plain", "--secret",
                      f"id=tok,src={self.work / 'secret.txt'}", "-t", "kill/after:1", ".",
                      cwd=self.run_ctx)  # fmt: skip
        if follow.returncode != 0:
            summary.failures.append(f"{where}: follow-up build failed:\n{follow.stderr[-3000:]}")
        left = leftovers(self.root)
        if left:
            summary.failures.append(f"{where}: follow-up build left:\n  " + "\n  ".join(left))


def kill_loop(
    kills: int, seed: int, work: Path | None = None, say: Callable[[str], None] = print
) -> KillSummary:
    say(f"kill loop: seed {seed}, {kills} kills")
    summary = KillSummary(seed)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bale-killloop-", dir=work) as tmp:
        loop = KillLoop(Path(tmp), random.Random(seed), say)
        loop.prepare()
        for _ in range(kills):
            loop.kill_once(summary)
            if summary.failures and len(summary.failures) > 20:
                break
        bale(loop.root, "store", "check")  # the last reclaim before the directory goes
    summary.seconds = time.monotonic() - start
    for failure in summary.failures:
        say(f"FAILURE {failure}")
    say(
        f"kill loop: seed {seed}: {summary.kills} kills {summary.by_op} "
        f"({summary.finished_before_kill} finished first, {summary.dirty_after_kill} left "
        f"something for the next command to reclaim) in {summary.seconds:.0f}s, "
        f"{len(summary.failures)} failures"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kills", type=int, default=200)
    p.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    p.add_argument("--work", type=Path, default=None, help="where the temporary root goes")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("kill loop: needs root (mounts, runc)", file=sys.stderr)
        return 2
    reason = missing_fixtures()
    if reason:
        print(f"kill loop: {reason}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    return 1 if kill_loop(args.kills, seed, args.work).failures else 0


if __name__ == "__main__":
    sys.exit(main())
