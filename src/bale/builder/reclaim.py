"""What builds that were killed left behind, reclaimed by the next bale command that opens
the store: runtime containers and their processes, step directories (mounts, generated
files, secrets), mount points, active snapshots and snapshot leases. Everything is owned by
a process (bale.owner); what a live process owns is never touched."""

from __future__ import annotations

import os
from pathlib import Path

from bale.mounts import reclaim_mount_points


def reclaim(root: Path) -> list[str]:
    """Reclaim the leftovers of dead builds under the store at `root`; what was removed.
    Cheap when there is nothing to do: a few directory listings."""
    from bale.builder.executor.scratch import reclaim_step_dirs, scratch_dir

    executor_dir = root / "executor"
    snapshots_dir = root / "snapshots"
    removed = reclaim_mount_points(snapshots_dir / "mnt")
    runc_state = executor_dir / "runc"
    if runc_state.is_dir() and any(e.name.startswith("bale-") for e in os.scandir(runc_state)):
        from bale.builder.executor import SandboxExecutor

        removed += SandboxExecutor(executor_dir).prune_orphans()
    else:
        removed += reclaim_step_dirs(scratch_dir(executor_dir))
    if (snapshots_dir / "metadata.db").exists():
        from bale.store.snapshots import Snapshotter

        snapshots = Snapshotter(snapshots_dir)
        try:
            removed += snapshots.prune_orphans()
        finally:
            snapshots.close()
    return removed
