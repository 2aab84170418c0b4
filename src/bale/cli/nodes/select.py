"""Which builder a build uses: `--builder`, else env BALE_BUILDER, else `bale builder use`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from bale.cli.nodes import schedule
from bale.cli.nodes.state import Builder, BuilderState
from bale.oci.platform import Platform


def state_root(args: argparse.Namespace) -> Path:
    from bale.store.local import default_root

    return Path(args.root) if getattr(args, "root", None) else default_root()


def selected(args: argparse.Namespace) -> Builder:
    state = BuilderState(state_root(args))
    name = (
        getattr(args, "builder", None)
        or os.environ.get("BALE_BUILDER")
        or os.environ.get("BUILDX_BUILDER")
        or state.current
    )
    if name == "bale":  # bale itself: the local builder, listed as `default`
        name = "default"
    return state.get(name)


def remote_builder(args: argparse.Namespace, platforms: Sequence[Platform]) -> Builder | None:
    """The builder when the build leaves this process, else None (a local build; with
    `--strict-platforms`, only after checking every platform is native here)."""
    builder = selected(args)
    if builder.remote:
        return builder
    if getattr(args, "strict_platforms", False):
        from bale.emulation import modes

        here = schedule.Capability(
            builder.nodes[0].name, builder.nodes[0].platforms or modes.native_platforms()
        )
        schedule.plan(platforms, [here], strict=True)
    return None
