"""`-o type=oci` (an OCI layout, as a tar or a directory) and `type=docker` (a docker
archive of one platform)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from bale.errors import InvalidArgument
from bale.exporters.archive_writer import atomic_output
from bale.exporters.base import ExportResponse
from bale.exporters.image import ImageOutcome
from bale.exporters.oci_archive import (
    SaveEntry,
    write_docker_archive,
    write_oci_archive,
    write_oci_dir,
)
from bale.oci.annotations import AnnotationSpec, annotate_index_descriptor
from bale.oci.descriptor import Descriptor
from bale.store.local import Store


class OciExporter:
    def __init__(
        self,
        dest: Path | None,
        names: list[str],
        tar: bool,
        stdout: BinaryIO,
        annotations: tuple[AnnotationSpec, ...] = (),
    ) -> None:
        self.dest = dest
        self.names = names
        self.tar = tar
        self.stdout = stdout
        self.annotations = annotations

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        # index-descriptor annotations go on the image's entry in the layout's index.json.
        target = annotate_index_descriptor(image.target, self.annotations)
        entries = [SaveEntry(n, target) for n in self.names] or [SaveEntry("", target)]
        if not self.tar:
            assert self.dest is not None
            write_oci_dir(store, entries, str(self.dest))
        else:
            with atomic_output(self.dest, self.stdout) as out:
                write_oci_archive(store, entries, out)
        return ExportResponse()


class DockerExporter:
    def __init__(self, dest: Path | None, names: list[str], stdout: BinaryIO) -> None:
        self.dest = dest
        self.names = names
        self.stdout = stdout

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        if len(image.manifests) != 1:
            raise InvalidArgument(
                "docker exporter does not currently support exporting manifest lists",
                hint="build one platform, or use -o type=oci",
            )
        manifest = image.manifests[0]
        plain = Descriptor(manifest.media_type, manifest.digest, manifest.size)
        with atomic_output(self.dest, self.stdout) as out:
            write_docker_archive(store, [(self.names, plain)], out)
        return ExportResponse()
