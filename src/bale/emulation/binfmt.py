"""binfmt_misc: which QEMU handlers the kernel has, and installing or removing them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bale.emulation import qemu
from bale.errors import NotFound, Unavailable
from bale.mounts import is_mountpoint, mount
from bale.oci import Platform

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class Handler:
    name: str
    enabled: bool
    interpreter: str
    flags: str

    @property
    def fix_binary(self) -> bool:
        """F: the kernel opened the interpreter at registration, so chroots need no copy."""
        return "F" in self.flags


def ensure_mounted(directory: Path = BINFMT_DIR) -> bool:
    """True when binfmt_misc is usable; mounts it first when absent and we are root."""
    if (directory / "register").exists():
        return True
    if os.geteuid() != 0 or directory != BINFMT_DIR or not directory.is_dir():
        return False
    if not is_mountpoint(str(directory)):
        try:
            mount("binfmt_misc", str(directory), "binfmt_misc", 0)
        except Unavailable:
            return False
    return (directory / "register").exists()


def read_handler(name: str, directory: Path = BINFMT_DIR) -> Handler | None:
    path = directory / name
    try:
        text = path.read_text()
    except (FileNotFoundError, PermissionError):
        return None
    enabled = False
    interpreter = flags = ""
    for line in text.splitlines():
        if line == "enabled":
            enabled = True
        elif line.startswith("interpreter "):
            interpreter = line.split(" ", 1)[1]
        elif line.startswith("flags:"):
            flags = line.split(":", 1)[1].strip()
    return Handler(name, enabled, interpreter, flags)


def handler_for(platform: Platform, directory: Path = BINFMT_DIR) -> Handler | None:
    name = qemu.handler_name(platform)
    if name is None or not ensure_mounted(directory):
        return None
    return read_handler(name, directory)


def _write(path: Path, text: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        raise Unavailable(
            f"cannot write {path}: {exc.strerror}",
            hint="installing binfmt handlers needs root (run: sudo bale emulation install)",
        ) from exc


def install(platform: Platform, directory: Path = BINFMT_DIR) -> Handler:
    """Register (or re-enable) the QEMU handler for `platform`, with the F flag."""
    name = qemu.handler_name(platform)
    if name is None:
        raise NotFound(f"no QEMU emulator is known for {platform}")
    if not ensure_mounted(directory):
        raise Unavailable(
            "binfmt_misc is not available",
            hint="mount it as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc",
        )
    line = qemu.registration(platform)
    if line is None or qemu.static_binary(platform) is None:
        raise Unavailable(
            f"no QEMU emulator for {platform} is installed",
            hint=f"install the {qemu.PACKAGE} package (apt-get install {qemu.PACKAGE})",
        )
    current = read_handler(name, directory)
    if current is not None and current.fix_binary:
        if not current.enabled:
            _write(directory / name, "1")
        found = read_handler(name, directory)
        assert found is not None
        return found
    if current is not None:
        _write(directory / name, "-1")  # registered without F: replace it
    _write(directory / "register", line)
    found = read_handler(name, directory)
    if found is None:
        raise Unavailable(f"the kernel did not accept the {name} handler")
    return found


def uninstall(platform: Platform, directory: Path = BINFMT_DIR) -> bool:
    """Remove the handler for `platform`; False when there was none."""
    name = qemu.handler_name(platform)
    if name is None or not ensure_mounted(directory):
        return False
    if read_handler(name, directory) is None:
        return False
    _write(directory / name, "-1")
    return True


def set_enabled(platform: Platform, enabled: bool, directory: Path = BINFMT_DIR) -> None:
    """Turn a registered handler off or on without removing it."""
    name = qemu.handler_name(platform)
    if name is None or read_handler(name, directory) is None:
        raise NotFound(f"no binfmt handler is registered for {platform}")
    _write(directory / name, "1" if enabled else "0")
