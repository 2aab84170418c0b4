"""Layers: apply a layer tar onto a directory, diff a snapshot into a compressed layer.

Names load on first use, so a module that needs only `rootpath` or `chain` does not import
the tar and compression machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bale.builder.layers.apply import ApplyResult, apply_layer
    from bale.builder.layers.compression import Sink
    from bale.builder.layers.diff import DiffOptions, LayerBlob, diff_trees, diff_upperdir

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bale.builder.layers' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bale.builder.layers.{module}"), name)
