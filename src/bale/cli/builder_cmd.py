"""`bale builder prune`: the build cache, as `docker buildx prune` / `docker builder prune`."""

from __future__ import annotations

import argparse

from bale.builder.prune import prune_build_cache
from bale.cli.common import open_store
from bale.store.gc import human_size


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    builder = sub.add_parser("builder", help="manage the build cache")
    bsub = builder.add_subparsers(dest="builder_command", metavar="COMMAND")
    bsub.required = True
    prune = bsub.add_parser("prune", help="remove the build cache")
    prune.add_argument("-a", "--all", action="store_true", help="accepted for buildx parity")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (always set)")
    prune.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        report = prune_build_cache(store)
    print(f"Deleted build cache records: {report.cache_records}")
    print(f"Deleted snapshots: {report.snapshots}")
    print(f"Total:\t{human_size(report.bytes_freed)}")
    return 0
