"""What the adversarial suites share: running bale as a user does, build contexts made from
the busybox fixtures, and an inventory of what a dead bale may have left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bale import owner

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BALE_FIXTURES", REPO / ".cache" / "busybox"))
ARCHES = {"linux/amd64": "amd64", "linux/arm64": "arm64"}  # OCI platform -> Debian arch
SCRATCH_DIRS = (Path("/dev/shm"),)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}


def argv(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bale", "--root", str(root), *args]


def bale(
    root: Path, *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`bale --root ROOT ARGS...` in a fresh interpreter; never raises on a failed command."""
    return subprocess.run(
        argv(root, *args),
        cwd=cwd,
        capture_output=True,
        text=True,
        errors="replace",
        env=env(),
        timeout=timeout,
        check=False,
    )


def spawn(root: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv(root, *args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=env(),
    )


def missing_fixtures(platforms: Sequence[str] = tuple(ARCHES)) -> str:
    """Why the busybox fixtures cannot be used, or ""."""
    absent = [p for p in platforms if not (FIXTURES / ARCHES[p] / "busybox").is_file()]
    if absent:
        return f"busybox-static for {', '.join(absent)} not in {FIXTURES}: run make fixtures"
    return ""


def busybox_context(dest: Path, dockerfile: str, files: int = 0) -> Path:
    """A context with bin/busybox-<arch> for each fixture platform, `files` small files under
    data/, and the given Dockerfile."""
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for arch in ARCHES.values():
        shutil.copy(FIXTURES / arch / "busybox", dest / "bin" / f"busybox-{arch}")
    data = dest / "data"
    data.mkdir(exist_ok=True)
    for i in range(files):
        (data / f"f{i:05d}").write_text(f"file {i}\n" * (i % 7 + 1))
    (dest / "Dockerfile").write_text(dockerfile)
    return dest


def _dead_step_dir(path: str) -> bool:
    """A bale step/heredoc directory (or something in one) whose making process is gone."""
    for scratch in SCRATCH_DIRS:
        prefix = f"{scratch}/"
        if not path.startswith(prefix):
            continue
        name = path[len(prefix) :].split("/", 1)[0]
        if name.startswith(("bale-step-", "bale-heredoc-")) and name.count("-") >= 3:
            return not owner.tag_alive(name.split("-")[2])
    return False


def _mount_points() -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        out.append(point)
    return out


def leftovers(root: Path) -> list[str]:
    """What no bale process may leave once the next command has run: mounts under the state
    directory or in a dead build's step directory, step and heredoc directories of dead
    builds (with the secret files in them), runc containers, and processes living there."""
    real = os.path.realpath(root)
    found: list[str] = []
    for point in _mount_points():
        if point == real or point.startswith(real + "/") or _dead_step_dir(point):
            found.append(f"mount {point}")
    for scratch in (*SCRATCH_DIRS, root / "executor" / "run"):
        if not scratch.is_dir():
            continue
        for entry in scratch.iterdir():
            if not entry.name.startswith(("bale-step-", "bale-heredoc-")):
                continue
            if scratch in SCRATCH_DIRS and not _dead_step_dir(str(entry)):
                continue  # a live build's (maybe another test's) step
            secrets = [str(p) for p in entry.glob("**/secret*")]
            found.append(f"step directory {entry}" + (f" with {secrets}" if secrets else ""))
    state = root / "executor" / "runc"
    runc = shutil.which("runc")
    if runc and state.is_dir():
        listing = subprocess.run(
            [runc, "--root", str(state), "list", "-q"], capture_output=True, text=True, check=False
        ).stdout.split()
        found += [f"runc container {c}" for c in listing]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "runc" in cmdline.split(" ", 1)[0] and real in cmdline:
            found.append(f"process {proc.name}: {cmdline[:200]}")
            continue
        for link in ("cwd", "root"):
            try:
                where = os.readlink(proc / link)
            except OSError:
                continue
            if where.startswith(real + "/") or _dead_step_dir(where):
                found.append(f"process {proc.name} ({cmdline[:80]}) with {link} {where}")
                break
    return found
