"""The rest of `docker buildx build`'s flags: `--builder` (which `bale builder` builder:
see cli/nodes), `-D/--debug`, and those bale refuses with a message rather than ignores (`--policy`,
`--resource`), so a buildx command line never half-works."""

from __future__ import annotations

import argparse

from bale.errors import InvalidArgument

UNSUPPORTED = {
    "policy": "--policy (build policies) is not supported by bale",
    "resource": "--resource (resource limits for build containers) is not supported by bale",
}


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--builder",
        default=None,
        metavar="NAME",
        help="builder to use (env BALE_BUILDER or BUILDX_BUILDER; default: bale builder use)",
    )
    p.add_argument(
        "-D",
        "--debug",
        action="store_true",
        help="debug output: tracebacks for errors (as BALE_DEBUG=1)",
    )
    p.add_argument("--policy", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--resource", action="append", default=[], help=argparse.SUPPRESS)


def check(args: argparse.Namespace) -> None:
    # An unknown builder name is refused where builders are looked up (cli/nodes/select).
    for key, message in UNSUPPORTED.items():
        if getattr(args, key):
            raise InvalidArgument(message, hint=f"drop --{key} from the command line")
