"""Where per-step files live, and reclaiming what killed builds left there. Light on
purpose: every command that opens the store runs the reclaim."""

from __future__ import annotations

import os
from pathlib import Path

from bale import owner
from bale.errors import BaleError
from bale.mounts import mounted_paths, unmount
from bale.trees import remove_tree


def scratch_dir(state_dir: Path) -> Path:
    """Where per-step files go (bundle, generated files, secrets): tmpfs when there is one.

    Secrets then never touch a disk, and a step costs no journal writes.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    run = state_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    return run


def reclaim_step_dirs(scratch: Path) -> list[str]:
    """Step and heredoc directories of processes that are gone: unmounted and removed."""
    removed = []
    entries = [*scratch.glob("bale-step-*"), *scratch.glob("bale-heredoc-*")]
    mounts = mounted_paths() if entries else []
    uid = os.geteuid()
    for entry in entries:
        tag = entry.name.split("-")[2] if entry.name.count("-") >= 3 else ""
        if not tag or owner.tag_alive(tag):
            continue
        try:
            # /dev/shm is every user's: another user's leftovers are theirs to reclaim.
            if entry.lstat().st_uid != uid:
                continue
            for mountpoint in sorted(
                (m for m in mounts if m.startswith(f"{entry}/")), reverse=True
            ):
                unmount(mountpoint, detach=True)
        except (OSError, BaleError):
            continue  # gone meanwhile, or a mount this user cannot undo: left as it is
        remove_tree(entry, ignore_errors=True)
        removed.append(str(entry))
    return removed
