"""`bale builder prune`: drop the build cache (records, the layers only it keeps, and the
unpacked snapshots), as `docker buildx prune` does. Images keep everything they use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bale.builder.cache import BuildCache
from bale.errors import FailedPrecondition, NotFound
from bale.store import gc
from bale.store.local import Store
from bale.store.snapshots import Snapshotter
from bale.trees import walk


@dataclass(frozen=True)
class PruneReport:
    cache_records: int
    snapshots: int
    bytes_freed: int  # snapshots on disk plus blobs and ingests garbage collection removed


def _disk_usage(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def prune_build_cache(store: Store) -> PruneReport:
    records = BuildCache(store).prune()
    freed = 0
    removed = 0
    snapshots_dir = store.root / "snapshots"
    if snapshots_dir.exists():
        snapshots = Snapshotter(snapshots_dir)
        try:
            snapshots.prune_orphans()
            before = _disk_usage(snapshots_dir)
            # Leaves first, again and again: a snapshot goes once nothing stands on it. Those
            # under a running build's step (active children) stay.
            progress = True
            while progress:
                progress = False
                for info in reversed(snapshots.all()):
                    if info.kind != "committed":
                        continue
                    try:
                        snapshots.remove(info.key)
                    except (FailedPrecondition, NotFound):
                        continue
                    removed += 1
                    progress = True
            freed += max(0, before - _disk_usage(snapshots_dir))
        finally:
            snapshots.close()
    report = gc.collect(store)
    freed += report.bytes_freed + report.ingest_bytes_freed
    return PruneReport(int(records), removed, freed)
