"""`-o type=local` and `type=tar`: each platform's filesystem as a directory or a tar (with
several platforms, one `linux_amd64`-style subdirectory each)."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from bale.exporters.archive_writer import atomic_output
from bale.exporters.base import ExportResponse
from bale.exporters.image import ImageOutcome
from bale.store.local import Store
from bale.trees import remove_tree


def write_local(store: Store, image: ImageOutcome, dest: Path, split: bool | None = None) -> None:
    """`split` (platform-split): one directory per platform; by default only when there are
    several. Unsplit, the platforms' files are merged, a later platform's file winning."""
    from bale.store.layers.apply import apply_layer  # loaded only for this output

    multi = len(image.platforms) > 1 if split is None else split
    dest.mkdir(parents=True, exist_ok=True)
    for result in image.platforms:
        target = dest / result.platform.dirname if multi else dest
        if target.exists() and multi:
            remove_tree(target)
        target.mkdir(parents=True, exist_ok=True)
        for layer in result.layers:
            with store.content.open(layer.descriptor.digest, layer.descriptor.size) as blob:
                apply_layer(blob, target, expect_diff_id=layer.diff_id)


class LocalExporter:
    def __init__(self, dest: Path, split: bool | None = None) -> None:
        self.dest = dest
        self.split = split

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        write_local(store, image, self.dest, self.split)
        return ExportResponse()


class TarExporter:
    def __init__(self, dest: Path | None, stdout: BinaryIO, split: bool | None = None) -> None:
        self.dest = dest
        self.stdout = stdout
        self.split = split

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        with tempfile.TemporaryDirectory(prefix="bale-tar-") as tmp:
            root = Path(tmp) / "root"
            write_local(store, image, root, self.split)
            with (
                atomic_output(self.dest, self.stdout) as out,
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for entry in sorted(os.listdir(root)):
                    tar.add(root / entry, arcname=entry)
        return ExportResponse()
