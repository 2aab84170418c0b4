"""The layer of an active snapshot, by whichever way its driver allows."""

from __future__ import annotations

from bale.store.compression import Sink
from bale.store.layers.diff import DiffOptions, LayerBlob, diff_trees, diff_upperdir
from bale.store.snapshots import Snapshotter


def diff_active(
    snapshotter: Snapshotter, key: str, sink: Sink, options: DiffOptions | None = None
) -> LayerBlob:
    """What the active snapshot `key` changed over its parent, as a layer written to `sink`.

    Overlay snapshots are read from their upper directory alone; copy snapshots are
    compared with their parent's tree. Unmount the snapshot first.
    """
    source = snapshotter.diff_source(key)
    opts = options or DiffOptions()
    if source.kind == "upperdir":
        return diff_upperdir(source.upper, sink, opts)
    return diff_trees(source.lower, source.upper, sink, opts)
