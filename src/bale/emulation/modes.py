"""How a step for a platform runs here: natively, through binfmt_misc + QEMU, or under proot."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bale.emulation import binfmt, qemu
from bale.errors import InvalidArgument, Unavailable
from bale.oci import Platform, host_platform

Mode = Literal["native", "binfmt", "proot"]
Preference = Literal["auto", "native", "binfmt", "proot"]
PREFERENCES = ("auto", "native", "binfmt", "proot")


@dataclass(frozen=True)
class Emulation:
    """The chosen way to run `platform`.

    `interpreter` is the QEMU binary for proot, or for a binfmt handler registered without
    the F flag (it must then be visible inside the rootfs at that path).
    """

    platform: Platform
    mode: Mode
    interpreter: str = ""
    needs_interpreter_in_rootfs: bool = False

    @property
    def label(self) -> str:
        """What progress shows: `[linux/arm64 emulated]`, empty when native."""
        if self.mode == "native":
            return ""
        suffix = " via proot" if self.mode == "proot" else ""
        return f"[{self.platform} emulated{suffix}]"


def native_platforms() -> tuple[Platform, ...]:
    """What the host runs without emulation (amd64 also runs 386), best first."""
    return host_platform().compatible()


def is_native(platform: Platform) -> bool:
    return host_platform().matches(platform)


def proot_path() -> str | None:
    return shutil.which("proot")


def _cannot_run(platform: Platform, why: str) -> Unavailable:
    return Unavailable(
        f"cannot run steps for {platform}: {why}",
        hint=(
            f"install {qemu.PACKAGE} (apt-get install {qemu.PACKAGE}), then run "
            f"`bale emulation install --platform {platform}` as root "
            "(or install proot for a slower fallback)"
        ),
    )


def choose(
    platform: Platform, prefer: str = "auto", binfmt_dir: Path = binfmt.BINFMT_DIR
) -> Emulation:
    """The mode for `platform`; `prefer` forces one ("auto" picks the best available)."""
    if prefer not in PREFERENCES:
        raise InvalidArgument(
            f"unknown emulation mode {prefer!r}", hint="use auto, native, binfmt or proot"
        )
    native = is_native(platform)
    if prefer in ("auto", "native") and native:
        return Emulation(platform, "native")
    if prefer == "native":
        raise _cannot_run(platform, f"it is not native to this {host_platform()} host")
    static = qemu.static_binary(platform)
    if prefer in ("auto", "binfmt"):
        handler = binfmt.handler_for(platform, binfmt_dir)
        if handler is not None and handler.enabled:
            return Emulation(
                platform,
                "binfmt",
                interpreter=handler.interpreter,
                needs_interpreter_in_rootfs=not handler.fix_binary,
            )
        if prefer == "binfmt":
            raise _cannot_run(platform, "no enabled binfmt_misc handler")
    if static is None:
        raise _cannot_run(platform, f"qemu-{qemu.qemu_arch(platform) or '?'}-static is missing")
    if proot_path() is None:
        raise _cannot_run(platform, "no binfmt_misc handler and proot is not installed")
    return Emulation(platform, "proot", interpreter=static)
