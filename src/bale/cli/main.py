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
from bale.cli.parser import BaleParser
from bale.cli.render_error import render

# Each module has `register(subparsers)`; the handlers it sets take the parsed namespace.
COMMAND_MODULES: tuple[str, ...] = (
    "bale.cli.registry_cmd",
    "bale.cli.images_cmd",
    "bale.cli.store_cmd",
    "bale.cli.emulation_cmd",
    "bale.cli.build_cmd",
    "bale.cli.builder_cmd",
    "bale.cli.bake_cmd",
    "bale.cli.history_cmd",
    "bale.cli.nodes.serve",
)


# Which module registers each top-level command: a run imports only the one it needs, so
# `bale build` does not pay for the registry client's imports (start-up time is build time).
COMMANDS: dict[str, str] = {
    "bake": "bale.cli.bake_cmd",
    "build": "bale.cli.build_cmd",
    "builder": "bale.cli.builder_cmd",
    "emulation": "bale.cli.emulation_cmd",
    "history": "bale.cli.history_cmd",
    "image": "bale.cli.images_cmd",
    "images": "bale.cli.images_cmd",
    "import": "bale.cli.images_cmd",
    "load": "bale.cli.images_cmd",
    "node": "bale.cli.nodes.serve",
    "rmi": "bale.cli.images_cmd",
    "save": "bale.cli.images_cmd",
    "tag": "bale.cli.images_cmd",
    "imagetools": "bale.cli.registry_cmd",
    "login": "bale.cli.registry_cmd",
    "logout": "bale.cli.registry_cmd",
    "pull": "bale.cli.registry_cmd",
    "push": "bale.cli.registry_cmd",
    "store": "bale.cli.store_cmd",
}


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of a command line (skipping `--root DIR`), or None."""
    args = list(argv)
    while args:
        word = args.pop(0)
        if word == "--root":
            if args:
                args.pop(0)
            continue
        if word.startswith("--root="):
            continue
        return None if word.startswith("-") else word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = BaleParser(prog="bale", description="Multi-platform container image builder.")
    parser.add_argument("--version", action="version", version=f"bale {__version__}")
    parser.add_argument(
        "--root",
        default=None,
        help="state directory (env BALE_ROOT; default /var/lib/bale as root, "
        "$XDG_DATA_HOME/bale otherwise)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    command = _command_of(argv) if argv is not None else None
    modules = [COMMANDS[command]] if command in COMMANDS else list(COMMAND_MODULES)
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:
        print(f"bale {__version__}")  # without loading every command
        return exitcodes.OK
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    debug = os.environ.get("BALE_DEBUG", "") not in ("", "0") or getattr(args, "debug", False)
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
    except OSError as exc:
        if debug or not exc.filename:
            raise
        # An I/O failure on a path the user gave (a full disk, a vanished directory).
        print(f"ERROR: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
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
