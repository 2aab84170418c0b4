"""What the command modules share: opening the store and registry sessions, docker's
relative times, and docker's table layout."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bale.store.local import Store, default_root

if TYPE_CHECKING:
    from bale.oci.descriptor import Descriptor
    from bale.registry.transport import Registries


def store_root(args: argparse.Namespace) -> Path:
    return Path(args.root) if getattr(args, "root", None) else default_root()


def open_store(args: argparse.Namespace) -> Store:
    """The store, after reclaiming what killed builds left in it (mounts, step directories,
    containers, active snapshots)."""
    root = store_root(args)
    store = Store(root)
    from bale.builder.reclaim import reclaim

    reclaim(root)
    return store


def open_registries(args: argparse.Namespace) -> Registries:
    """Registry sessions with the hosts configuration (and `--insecure` when given)."""
    from bale.registry.hosts import HostsConfig
    from bale.registry.transport import Registries, RegistryOptions

    hosts = HostsConfig.load().with_insecure(bool(getattr(args, "insecure", False)))
    return Registries(RegistryOptions(hosts=hosts))


def ago(ts: float) -> str:
    """Docker's `CREATED` column: "About a minute ago", "3 hours ago"."""
    seconds = max(0, int(time.time() - ts))
    if seconds < 60:
        if seconds < 1:
            return "Less than a second ago"
        return "1 second ago" if seconds == 1 else f"{seconds} seconds ago"
    minutes = seconds // 60
    if minutes == 1:
        return "About a minute ago"
    if minutes < 60:
        return f"{minutes} minutes ago"
    hours = minutes // 60
    if hours == 1:
        return "About an hour ago"
    if hours < 48:
        return f"{hours} hours ago"
    days = hours // 24
    if days < 14:
        return f"{days} days ago"
    if days < 60:
        return f"{days // 7} weeks ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, as docker prints them."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def _flag_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r} (use true or false)")


def add_unpack_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--unpack",
        nargs="?",
        const=True,
        default=None,
        type=_flag_bool,
        metavar="BOOL",
        help="--unpack=false leaves the layers packed until a build needs them (default: "
        "unpack now, so a build from the image starts at once; or $BALE_UNPACK)",
    )


def unpack_arrived(store: Store, args: argparse.Namespace, targets: Sequence[Descriptor]) -> None:
    """Unpack what a command stored, unless --unpack=false or BALE_UNPACK=0 says not to."""
    import sys

    from bale.store.unpacking import unpack_arrived as unpack
    from bale.store.unpacking import unpack_wanted

    if not unpack_wanted(getattr(args, "unpack", None)):
        return

    def warn(message: str) -> None:
        print(f"WARNING: {message}", file=sys.stderr)

    unpack(store, list(targets), warn)
