"""`-o type=registry` (and `--push`, or `type=image,push=true`): the image pushed to each
name, as the finalize step, once every local output is written."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from bale.exporters.base import ExportResponse
from bale.exporters.image import ImageOutcome
from bale.oci.reference import Reference
from bale.store.local import Store

if TYPE_CHECKING:
    from bale.registry.transport import Registries


class RegistryExporter:
    def __init__(
        self,
        names: list[str],
        registries: Callable[[], AbstractContextManager[Registries]],
        *,
        by_digest: bool = False,
    ) -> None:
        self.names = names
        self.registries = registries
        self.by_digest = by_digest

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        def push() -> None:
            from bale.registry.push import push_image

            with self.registries() as registries:
                for name in self.names:
                    push_image(
                        store,
                        image.target,
                        Reference.parse(name),
                        registries=registries,
                        by_digest=self.by_digest,
                    )

        return ExportResponse(finalize=push)
