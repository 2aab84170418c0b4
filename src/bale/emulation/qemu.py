"""QEMU user-mode names and files for OCI platforms."""

from __future__ import annotations

import shutil
from pathlib import Path

from bale.oci import Platform

PACKAGE = "qemu-user-static"

# OCI architecture -> QEMU target name (the suffix of qemu-<name>-static).
_QEMU_ARCH = {
    "amd64": "x86_64",
    "386": "i386",
    "arm64": "aarch64",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
    "mips64": "mips64",
    "mipsle": "mipsel",
    "mips": "mips",
    "loong64": "loongarch64",
}

# The platforms `bale emulation install` sets up when none is named (as tonistiigi/binfmt).
DEFAULT_PLATFORMS = (
    "linux/arm64",
    "linux/arm/v7",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
    "linux/386",
    "linux/amd64",
)

_BINFMT_DEFINITIONS = (Path("/usr/lib/binfmt.d"), Path("/usr/share/binfmts"))


def qemu_arch(platform: Platform) -> str | None:
    return _QEMU_ARCH.get(platform.architecture)


def handler_name(platform: Platform) -> str | None:
    """The binfmt_misc entry name for a platform (`qemu-aarch64`)."""
    arch = qemu_arch(platform)
    return f"qemu-{arch}" if arch else None


def static_binary(platform: Platform) -> str | None:
    """The installed qemu-<arch>-static for a platform, or None."""
    arch = qemu_arch(platform)
    if arch is None:
        return None
    return shutil.which(f"qemu-{arch}-static")


def registration(platform: Platform) -> str | None:
    """The binfmt_misc `register` line for a platform, from the installed package.

    Debian ships it in /usr/lib/binfmt.d/qemu-<arch>.conf. The F flag (open the interpreter
    when registering) is added so it also works inside a chroot that lacks QEMU.
    """
    name = handler_name(platform)
    if name is None:
        return None
    conf = _BINFMT_DEFINITIONS[0] / f"{name}.conf"
    if conf.is_file():
        for line in conf.read_text().splitlines():
            line = line.strip()
            if line.startswith(":"):
                fields = line.split(":")
                # :name:type:offset:magic:mask:interpreter:flags
                if len(fields) >= 8 and "F" not in fields[7]:
                    fields[7] += "F"
                return ":".join(fields)
    legacy = _BINFMT_DEFINITIONS[1] / name
    static = static_binary(platform)
    if legacy.is_file() and static:
        values: dict[str, str] = {}
        for line in legacy.read_text().splitlines():
            key, _, value = line.partition(" ")
            values[key] = value.strip()
        interp = values.get("interpreter", static)
        flags = "PF" if interp.endswith("-binfmt-P") else "F"
        return (
            f":{name}:M:{values.get('offset', '0')}:{values.get('magic', '')}:"
            f"{values.get('mask', '')}:{interp}:{flags}"
        )
    return None
