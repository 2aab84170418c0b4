"""The rest of `docker buildx build`'s flags: `--builder` (bale is one local builder),
`-D/--debug`, and those bale refuses with a message rather than ignores (`--policy`,
`--resource`), so a buildx command line never half-works."""

from __future__ import annotations

import argparse
import os

from bale.errors import InvalidArgument

# The one builder bale is; buildx names the docker driver's builder "default".
BUILDER_NAMES = ("default", "bale")
UNSUPPORTED = {
    "policy": "--policy (build policies) is not supported by bale",
    "resource": "--resource (resource limits for build containers) is not supported by bale",
}


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--builder",
        default=None,
        metavar="NAME",
        help="builder instance (env BUILDX_BUILDER); bale is the one, 'default'",
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
    builder = args.builder or os.environ.get("BUILDX_BUILDER") or "default"
    if builder not in BUILDER_NAMES:
        raise InvalidArgument(
            f"no builder {builder!r} found",
            hint="bale builds on this machine only (remote and multi-node builders are not "
            "supported); use --builder default or leave it out",
        )
    for key, message in UNSUPPORTED.items():
        if getattr(args, key):
            raise InvalidArgument(message, hint=f"drop --{key} from the command line")
