"""`bale` entry point: builds the parser from the command modules and maps errors to exits."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from bale import __version__, errors
from bale.cli import exitcodes
from bale.cli.render_error import render

# Each module has `register(subparsers)`; the handlers it sets take the parsed namespace.
COMMAND_MODULES: tuple[str, ...] = (
    "bale.cli.registry_cmd",
    "bale.cli.images_cmd",
    "bale.cli.store_cmd",
    "bale.cli.emulation_cmd",
    "bale.cli.build_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bale", description="Multi-platform container image builder."
    )
    parser.add_argument("--version", action="version", version=f"bale {__version__}")
    parser.add_argument(
        "--root",
        default=None,
        help="state directory (env BALE_ROOT; default /var/lib/bale as root, "
        "$XDG_DATA_HOME/bale otherwise)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("BALE_DEBUG", "") not in ("", "0")
    try:
        code = args.func(args)
        return int(code or 0)
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except errors.BaleError as exc:
        if debug:
            traceback.print_exc()
        print(render(exc), file=sys.stderr)
        return exitcodes.for_error(exc)
    except BrokenPipeError:
        return exitcodes.ERROR
    except Exception as exc:  # a bug: say so in one line unless debugging
        if debug:
            raise
        print(
            f"ERROR: internal error: {type(exc).__name__}: {exc}\n"
            "hint: run again with BALE_DEBUG=1 for a traceback, and report it",
            file=sys.stderr,
        )
        return exitcodes.ERROR


if __name__ == "__main__":
    sys.exit(main())
