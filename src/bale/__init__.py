"""bale: a multi-platform container image builder."""

__version__ = "0.1.0"
