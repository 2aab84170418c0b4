"""Store commands: store use/status/gc/check."""

from __future__ import annotations

import argparse

from bale.cli.common import open_store
from bale.store import gc
from bale.store.check import check_store
from bale.store.images import StoreMode


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = sub.add_parser("store", help="manage the local store")
    ssub = store.add_subparsers(dest="store_command", metavar="COMMAND")
    ssub.required = True
    use = ssub.add_parser("use", help="switch the image store mode")
    use.add_argument("mode", choices=[m.value for m in StoreMode])
    use.set_defaults(func=cmd_use)
    ssub.add_parser("status", help="show the store mode and usage").set_defaults(func=cmd_status)
    ssub.add_parser("gc", help="free content no image refers to").set_defaults(func=cmd_gc)
    ssub.add_parser("check", help="verify every blob and reference").set_defaults(func=cmd_check)


def cmd_use(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.set_mode(StoreMode.parse(args.mode))
        print(f"image store: {args.mode}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        mode = store.mode()
        blobs = list(store.content.walk())
        visible = len(store.images().all())
        total = store.meta.query("SELECT COUNT(*) FROM images")[0][0]
        print(f"root:        {store.root}")
        print(f"mode:        {mode.value}")
        print(f"images:      {visible} ({int(total) - visible} hidden in the other mode)")
        print(f"blobs:       {len(blobs)} ({gc.human_size(sum(b.size for b in blobs))})")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        report = gc.collect(store)
    for digest in report.removed:
        print(f"deleted: {digest}")
    freed = report.bytes_freed + report.ingest_bytes_freed
    print(f"Total reclaimed space: {gc.human_size(freed)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        problems = check_store(store)
        count = sum(1 for _ in store.content.walk())
    for p in problems:
        print(f"{p.subject}: {p.message}")
    if problems:
        print(f"{len(problems)} problem(s) found")
        return 1
    print(f"ok: {count} blobs verified")
    return 0
