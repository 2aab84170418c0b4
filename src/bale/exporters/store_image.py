"""`-o type=image` (and `--load`): the image named in the local store; an unnamed image is
kept as a dangling record, as docker keeps `<none>` images.

Options as BuildKit's image exporter takes them: `name-canonical` adds `NAME@DIGEST` beside
each name, `dangling-name-prefix` names an unnamed image `PREFIX@DIGEST`, `store=false`
keeps nothing (with push), `unpack` unpacks the image's layers into snapshots, so a build
from it starts without extracting them.
"""

from __future__ import annotations

from collections.abc import Callable

from bale.exporters.base import ExportResponse
from bale.exporters.image import ImageOutcome
from bale.oci.descriptor import Descriptor
from bale.oci.reference import Reference
from bale.store.content import VerifyingReader
from bale.store.images import DANGLING_PREFIX
from bale.store.local import Store


class StoreImageExporter:
    def __init__(
        self,
        names: list[str],
        *,
        name_canonical: bool = False,
        dangling_prefix: str = "",
        unpack: bool = False,
    ) -> None:
        self.names = names
        self.name_canonical = name_canonical
        self.dangling_prefix = dangling_prefix
        self.unpack = unpack

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        digest = image.target.digest
        if not self.names:
            prefix = f"{self.dangling_prefix}@" if self.dangling_prefix else DANGLING_PREFIX
            store.set_image(f"{prefix}{digest}", image.target)
        for name in self.names:
            store.set_image(name, image.target)
            if self.name_canonical:
                ref = Reference.parse(name)
                store.set_image(f"{ref.name}@{digest}", image.target)
        if self.unpack:
            _unpack(store, image)
        return ExportResponse()


def _opener(store: Store, desc: Descriptor) -> Callable[[], VerifyingReader]:
    return lambda: store.content.open(desc.digest, desc.size)


def _unpack(store: Store, image: ImageOutcome) -> None:
    from bale.store.layers.unpack import LayerSource, unpack_chain
    from bale.store.snapshots import Snapshotter

    snapshots = Snapshotter(store.root / "snapshots")
    try:
        for platform in image.platforms:
            sources = [
                LayerSource(layer.diff_id, _opener(store, layer.descriptor))
                for layer in platform.layers
            ]
            unpack_chain(snapshots, sources)
    finally:
        snapshots.close()
