"""Emulation detection and `bale emulation status|install|uninstall` on the real kernel."""

from __future__ import annotations

import json
import os
import platform as host
import subprocess
import sys
from collections.abc import Iterator

import pytest
from exechelp import require_root

from bale.emulation import binfmt, qemu
from bale.emulation.modes import choose, native_platforms
from bale.oci import Platform

# A handler other tests on this machine do not use, so removing it for a moment is harmless.
SPARE = Platform.parse("linux/mips64le")


def bale(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BALE_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "bale", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def test_host_and_native_platforms() -> None:
    natives = [str(p) for p in native_platforms()]
    machine = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(host.machine())
    if machine is None:
        pytest.skip(f"no expectation written for a {host.machine()} host")
    assert natives[0] == machine
    if machine == "linux/amd64":
        assert "linux/386" in natives
        assert choose(Platform.parse("linux/386")).mode == "native"
    assert "linux/arm64" not in natives or machine == "linux/arm64"


def test_registration_line_has_the_f_flag() -> None:
    line = qemu.registration(Platform.parse("linux/arm64"))
    if line is None:
        pytest.skip("qemu-user-static's binfmt definitions are not installed")
    fields = line.split(":")
    assert fields[1] == "qemu-aarch64"
    assert "F" in fields[7]
    assert fields[4].startswith("\\x7f\\x45\\x4c\\x46")  # ELF magic


def test_status_reports_modes() -> None:
    result = bale("emulation", "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = {r["platform"]: r for r in doc["platforms"]}
    assert doc["native"][0] == doc["host"]
    assert rows[doc["host"]]["mode"] == "native"
    handler = binfmt.handler_for(Platform.parse("linux/arm64"))
    expected = "binfmt" if handler is not None and handler.enabled else "proot"
    assert rows["linux/arm64"]["mode"] == expected
    text = bale("emulation", "status")
    assert text.returncode == 0
    assert "linux/arm64" in text.stdout and "PLATFORM" in text.stdout


@pytest.fixture
def spare_handler() -> Iterator[None]:
    """Remember whether the spare handler was registered and put it back that way."""
    require_root()
    if qemu.registration(SPARE) is None or qemu.static_binary(SPARE) is None:
        pytest.skip(f"{qemu.PACKAGE} has no emulator for {SPARE}")
    before = binfmt.handler_for(SPARE)
    try:
        yield
    finally:
        now = binfmt.handler_for(SPARE)
        if before is None and now is not None:
            binfmt.uninstall(SPARE)
        elif before is not None and (now is None or now.enabled != before.enabled):
            binfmt.install(SPARE)
            if not before.enabled:
                binfmt.set_enabled(SPARE, False)


@pytest.mark.root
def test_install_and_uninstall(spare_handler: None) -> None:
    removed = bale("emulation", "uninstall", "--platform", str(SPARE))
    assert removed.returncode == 0, removed.stderr
    assert binfmt.handler_for(SPARE) is None
    installed = bale("emulation", "install", "--platform", str(SPARE))
    assert installed.returncode == 0, installed.stderr
    assert "installed qemu-mips64el" in installed.stdout
    handler = binfmt.handler_for(SPARE)
    assert handler is not None and handler.enabled and handler.fix_binary
    # Installing again is a no-op, a disabled handler is enabled again.
    binfmt.set_enabled(SPARE, False)
    again = bale("emulation", "install", "--platform", str(SPARE))
    assert again.returncode == 0
    handler = binfmt.handler_for(SPARE)
    assert handler is not None and handler.enabled


def test_install_native_and_bad_input() -> None:
    native = bale("emulation", "install", "--platform", "linux/amd64")
    if host.machine() == "x86_64":
        assert native.returncode == 0 and "native" in native.stdout
    bad = bale("emulation", "install", "--platform", "linux/arm64/v9/x")
    assert bad.returncode != 0
    assert "invalid platform" in bad.stderr and "Traceback" not in bad.stderr
    unknown = bale("emulation", "install", "--platform", "linux/sparc64")
    assert unknown.returncode != 0
    assert "linux/sparc64" in unknown.stderr
    # Removing every handler by accident is not possible.
    assert bale("emulation", "uninstall").returncode != 0
