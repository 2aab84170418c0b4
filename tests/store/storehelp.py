"""Helpers for the store tests: run the CLI as a user would, build rootfs tars, snapshot state."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bale.store.local import Store
from support import busybox_path, free_port, require_root, require_tool  # noqa: F401 - shared

TESTS = Path(__file__).resolve().parent.parent


def bale(
    root: Path, *args: str, input: bytes | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`bale --root ROOT ARGS...` in a fresh interpreter; text output."""
    env = {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}
    proc = subprocess.run(
        [sys.executable, "-m", "bale", "--root", str(root), *args],
        input=input.decode("latin-1") if input is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bale {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def bale_bytes(
    root: Path, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Like `bale` but with binary stdin/stdout (load from stdin, save to stdout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}
    return subprocess.run(
        [sys.executable, "-m", "bale", "--root", str(root), *args],
        input=input,
        capture_output=True,
        env=env,
        timeout=300,
    )


def rootfs_tar(busybox: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A root filesystem holding /bin/busybox and /bin/sh -> busybox, deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin",):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("bin/sh")
        link.type = tarfile.SYMTYPE
        link.linkname = "busybox"
        link.mode = 0o777
        tar.addfile(link)
        for name, content in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def small_rootfs(marker: str) -> bytes:
    """A tiny rootfs without binaries, for tests about the store rather than about running."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = marker.encode()
        info = tarfile.TarInfo("etc/marker")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def import_platforms(root: Path, tmp: Path, ref: str, tars: dict[str, bytes]) -> list[str]:
    """`bale import --platform P TAR REF` for each platform; returns the printed digests."""
    out = []
    for platform, data in tars.items():
        path = tmp / f"rootfs-{platform.replace('/', '_')}.tar"
        path.write_bytes(data)
        out.append(bale(root, "import", "--platform", platform, str(path), ref).stdout.strip())
    return out


@dataclass(frozen=True)
class StoreState:
    blobs: frozenset[str]
    images: frozenset[tuple[str, str, str]]  # (mode, name, digest), both modes


def state(root: Path) -> StoreState:
    with Store(root) as store:
        blobs = frozenset(str(b.digest) for b in store.content.walk())
        rows = store.meta.query("SELECT mode, name, digest FROM images")
    return StoreState(blobs, frozenset((str(m), str(n), str(d)) for m, n, d in rows))


def assert_check_clean(root: Path) -> None:
    proc = bale(root, "store", "check", check=False)
    assert proc.returncode == 0, f"store check failed:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.startswith("ok:"), proc.stdout
