"""`-o type=image` (and `--load`): the image named in the local store; an unnamed image is
kept as a dangling record, as docker keeps `<none>` images."""

from __future__ import annotations

from bale.exporters.base import ExportResponse
from bale.exporters.image import ImageOutcome
from bale.store.images import DANGLING_PREFIX
from bale.store.local import Store


class StoreImageExporter:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        if not self.names:
            store.set_image(f"{DANGLING_PREFIX}{image.target.digest}", image.target)
        for name in self.names:
            store.set_image(name, image.target)
        return ExportResponse()
