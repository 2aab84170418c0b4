"""Layers: apply a layer tar onto a directory, diff a snapshot into a compressed layer.

Names load on first use, so a module that needs only `rootpath` or `chain` does not import
the tar and compression machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bale.lazy import lazy_getattr

if TYPE_CHECKING:
    from bale.store.compression import Sink
    from bale.store.layers.apply import ApplyResult, apply_layer
    from bale.store.layers.diff import DiffOptions, LayerBlob, diff_trees, diff_upperdir

_WHERE = {
    "ApplyResult": "apply",
    "DiffOptions": "diff",
    "LayerBlob": "diff",
    "Sink": "compression",
    "apply_layer": "apply",
    "diff_trees": "diff",
    "diff_upperdir": "diff",
}

__all__ = [
    "ApplyResult",
    "DiffOptions",
    "LayerBlob",
    "Sink",
    "apply_layer",
    "diff_trees",
    "diff_upperdir",
]


__getattr__ = lazy_getattr("bale.store.layers", _WHERE)
