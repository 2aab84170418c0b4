"""Layers: apply a layer tar onto a directory, diff a snapshot into a compressed layer."""

from bale.builder.layers.apply import ApplyResult, apply_layer
from bale.builder.layers.compression import Sink
from bale.builder.layers.diff import DiffOptions, LayerBlob, diff_trees, diff_upperdir

__all__ = [
    "ApplyResult",
    "DiffOptions",
    "LayerBlob",
    "Sink",
    "apply_layer",
    "diff_trees",
    "diff_upperdir",
]
