"""`bale emulation status|install|uninstall`: QEMU user emulation through binfmt_misc."""

from __future__ import annotations

import argparse
import json
import sys

from bale.emulation import binfmt, modes, qemu
from bale.errors import BaleError, InvalidArgument
from bale.oci import Platform, host_platform


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emu = sub.add_parser("emulation", help="show or set up QEMU emulation for other platforms")
    esub = emu.add_subparsers(dest="emulation_command", metavar="COMMAND")
    esub.required = True
    status = esub.add_parser("status", help="show how each platform runs on this host")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=cmd_status)
    install = esub.add_parser("install", help="register QEMU binfmt_misc handlers (root)")
    install.add_argument(
        "--platform", action="append", default=[], help="platform(s), comma-separated or repeated"
    )
    install.set_defaults(func=cmd_install)
    uninstall = esub.add_parser("uninstall", help="remove QEMU binfmt_misc handlers (root)")
    uninstall.add_argument(
        "--platform", action="append", required=True, help="platform(s) whose handler to remove"
    )
    uninstall.set_defaults(func=cmd_uninstall)


def _platforms(values: list[str]) -> list[Platform]:
    names = [p for v in values for p in v.split(",") if p.strip()] or list(qemu.DEFAULT_PLATFORMS)
    out: list[Platform] = []
    for name in names:
        platform = Platform.parse(name)
        if platform.os != "linux":
            raise InvalidArgument(f"{platform}: only linux platforms can be emulated")
        out.append(platform)
    return out


def _status_rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for name in qemu.DEFAULT_PLATFORMS:
        platform = Platform.parse(name)
        handler = binfmt.handler_for(platform)
        mode: str
        try:
            mode = modes.choose(platform).mode
        except BaleError:
            mode = "unavailable"
        rows.append(
            {
                "platform": str(platform),
                "mode": mode,
                "handler": (handler.name if handler else "")
                + ("" if handler is None else (" (enabled)" if handler.enabled else " (disabled)")),
                "flags": handler.flags if handler else "",
                "emulator": qemu.static_binary(platform) or "",
            }
        )
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    rows = _status_rows()
    if args.format == "json":
        doc = {
            "host": str(host_platform()),
            "native": [str(p) for p in modes.native_platforms()],
            "binfmt_misc": binfmt.ensure_mounted(),
            "proot": modes.proot_path() or "",
            "platforms": rows,
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"host:     {host_platform()}")
    print(f"native:   {', '.join(str(p) for p in modes.native_platforms())}")
    print(f"binfmt:   {'available' if binfmt.ensure_mounted() else 'not available'}")
    print(f"proot:    {modes.proot_path() or 'not installed'}")
    print()
    width = max(len(r["platform"]) for r in rows) + 2
    print(f"{'PLATFORM':<{width}}{'MODE':<13}{'HANDLER':<28}{'FLAGS':<7}EMULATOR")
    for r in rows:
        print(
            f"{r['platform']:<{width}}{r['mode']:<13}{r['handler']:<28}{r['flags']:<7}"
            f"{r['emulator'] or '-'}"
        )
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    failed = 0
    for platform in _platforms(args.platform):
        if modes.is_native(platform):
            print(f"{platform}: native, nothing to install")
            continue
        try:
            handler = binfmt.install(platform)
        except BaleError as exc:
            failed += 1
            hint = f" ({exc.hint})" if exc.hint else ""
            print(f"{platform}: {exc}{hint}", file=sys.stderr)
            continue
        print(f"{platform}: installed {handler.name} -> {handler.interpreter} [{handler.flags}]")
    return 1 if failed else 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    for platform in _platforms(args.platform):
        if modes.is_native(platform):
            continue
        removed = binfmt.uninstall(platform)
        print(f"{platform}: {'removed' if removed else 'not installed'}")
    return 0
