"""Real services for the build tests: docker-registry, containerd, the Debian python base."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from buildhelp import PYTHON_BASE, REPO, bale, env, require_root, require_tool, stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}:\n{log.read_text()}")
        if ready():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not start in 60s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real docker-registry on 127.0.0.1:<free port>; yields host:port."""
    exe = require_tool("docker-registry")
    directory = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = directory / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = directory / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "serve", str(config)], stdout=out, stderr=out)
    try:

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        _wait("docker-registry", ready, proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A real containerd with its own root, state and socket; yields the ctr command prefix."""
    require_root()
    exe = require_tool("containerd")
    ctr = require_tool("ctr")
    require_tool("runc")
    # A short path: unix socket names are limited to 108 bytes.
    base = Path(f"/tmp/bale-build-ctd-{os.getpid()}-{time.monotonic_ns()}")
    base.mkdir()
    sock = base / "sock"
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
    )
    log = tmp_path_factory.mktemp("containerd") / "containerd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [exe, "--root", str(base / "root"), "--state", str(base / "state"),
             "--address", str(sock), "--config", str(config)],
            stdout=out, stderr=out,
        )
    prefix = [ctr, "--address", str(sock)]
    try:

        def ready() -> bool:
            if not sock.exists():
                return False
            return subprocess.run([*prefix, "version"], capture_output=True).returncode == 0

        _wait("containerd", ready, proc, log)
        yield prefix
    finally:
        stop(proc)
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def python_base_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bale root holding the python-app example's Debian base for amd64 and arm64, made by
    scripts/python-base.sh (mmdebstrap, rootfs tarballs cached under the repo's .cache)."""
    require_root()
    require_tool("mmdebstrap")
    cache = REPO / ".cache"
    missing = [
        arch for arch in ("amd64", "arm64")
        if not (cache / "rootfs" / f"bookworm-python-{arch}.tar").is_file()
    ]
    if missing:
        try:
            socket.create_connection(("deb.debian.org", 80), timeout=10).close()
        except OSError as exc:
            pytest.skip(f"mmdebstrap cannot reach the Debian mirror deb.debian.org: {exc}")
    root = tmp_path_factory.mktemp("python-base") / "root"
    proc = subprocess.run(
        [str(REPO / "scripts" / "python-base.sh")],
        cwd=REPO,
        env={**env(), "BALE": f"{REPO / '.venv' / 'bin' / 'bale'} --root {root}",
             "CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        text = proc.stderr + proc.stdout
        if "deb.debian.org" in text or "Temporary failure" in text or "Could not" in text:
            pytest.skip(f"mmdebstrap could not fetch from the Debian mirror:\n{text[-2000:]}")
        raise AssertionError(f"scripts/python-base.sh failed:\n{text}")
    assert PYTHON_BASE.split(":")[0] in bale(root, "images").stdout
    return root
