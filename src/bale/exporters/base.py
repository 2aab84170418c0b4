"""The exporter seam (BuildKit's Exporter → ExporterInstance): each output is an object made
from its `-o` spec before any step runs (so a bad output fails early), then given the
assembled image. Slow work that must come last (a registry push) is its `finalize`, run
after every local output exists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bale.exporters.image import ImageOutcome
from bale.store.local import Store


@dataclass(frozen=True)
class ExportResponse:
    # What the metadata file gets from this output (buildx's exporter response keys).
    metadata: dict[str, str] = field(default_factory=dict)
    finalize: Callable[[], None] | None = None


class Exporter(Protocol):
    def export(self, store: Store, image: ImageOutcome) -> ExportResponse: ...
