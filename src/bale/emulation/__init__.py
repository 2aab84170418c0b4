"""Emulation: which platforms run natively, through binfmt_misc + QEMU, or under proot."""

from bale.emulation.binfmt import Handler, install, uninstall
from bale.emulation.modes import Emulation, choose, is_native, native_platforms

__all__ = [
    "Emulation",
    "Handler",
    "choose",
    "install",
    "is_native",
    "native_platforms",
    "uninstall",
]
