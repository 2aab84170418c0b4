"""What every test directory shares: fixture binaries, guards for real tools, and the real
services the tests start (docker-registry, containerd) on loopback and in temp dirs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BALE_FIXTURES", REPO / ".cache" / "busybox"))
# The Makefile's CACHE (shared by clones on one machine, when root), else the checkout's own.
CACHE = Path(os.environ.get("CACHE") or REPO / ".cache")

# Debian architecture names of the busybox-static fixtures, by OCI platform.
DEBIAN_ARCH = {
    "linux/amd64": "amd64",
    "linux/arm64": "arm64",
    "linux/arm/v7": "armhf",
    "linux/s390x": "s390x",
    "linux/ppc64le": "ppc64el",
    "linux/386": "i386",
}


def busybox_path(platform: str) -> Path | None:
    path = FIXTURES / DEBIAN_ARCH[platform] / "busybox"
    return path if path.exists() else None


def busybox_rootfs_tar(tmp: Path, platform: str) -> Path:
    """A one-layer rootfs tar for `platform`: static busybox as /bin/busybox and /bin/sh, an
    /etc/passwd with root and app (1234:2345) and an /etc/group with staff; skips with the
    reason when the fixture was not fetched."""
    busybox = busybox_path(platform)
    if busybox is None:
        pytest.skip(f"busybox-static for {platform} not fetched; run scripts/fetch-fixtures.sh")
    root = tmp / platform.replace("/", "_")
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "bin" / "busybox").write_bytes(busybox.read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\napp:x:1234:2345::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nstaff:x:2345:\n")
    out = tmp / f"{root.name}.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(root, arcname=".")
    return out


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts, namespaces or binfmt_misc)")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it as root)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended in `timeout` seconds."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[Any], log: Path
) -> None:
    """Wait (60 s at most) for a started service; fail with its log if it exits or hangs."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}:\n{log.read_text()}")
        if ready():
            return
        time.sleep(0.1)
    stop_process(proc)
    raise AssertionError(f"{what} did not start in 60s:\n{log.read_text()}")


def _listening(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return ready


@dataclass
class RegistryServer:
    """A real docker-registry on 127.0.0.1; its log is kept (at info level) for assertions."""

    host: str  # 127.0.0.1:PORT
    log: Path
    proc: subprocess.Popen[bytes]
    root: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)


def start_registry(directory: Path, auth_yaml: str = "") -> RegistryServer:
    binary = require_tool("docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth_yaml
    )
    log = directory / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=out)
    wait_until("docker-registry", _listening(port), proc, log)
    return RegistryServer(f"127.0.0.1:{port}", log, proc, directory)


@dataclass
class Containerd:
    """A real containerd with its own root, state and socket."""

    ctr: list[str]  # the `ctr --address SOCK` command prefix
    proc: subprocess.Popen[bytes]
    base: Path

    def stop(self) -> None:
        stop_process(self.proc)
        subprocess.run(["umount", "-R", str(self.base)], capture_output=True, check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def start_containerd(log_dir: Path) -> Containerd:
    require_root()
    exe = require_tool("containerd")
    ctr = require_tool("ctr")
    require_tool("runc")
    # A short path: unix socket names are limited to 108 bytes.
    base = Path(f"/tmp/bale-ctd-{os.getpid()}-{time.monotonic_ns()}")
    base.mkdir()
    sock = base / "sock"
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
    )
    log = log_dir / "containerd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                exe,
                "--root",
                str(base / "root"),
                "--state",
                str(base / "state"),
                "--address",
                str(sock),
                "--config",
                str(config),
            ],
            stdout=out,
            stderr=out,
        )
    service = Containerd([ctr, "--address", str(sock)], proc, base)

    def ready() -> bool:
        if not sock.exists():
            return False
        version = subprocess.run([*service.ctr, "version"], capture_output=True, check=False)
        return version.returncode == 0

    try:
        wait_until("containerd", ready, proc, log)
    except BaseException:
        service.stop()
        raise
    return service
