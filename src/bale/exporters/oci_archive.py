"""OCI image layout archives (`bale save`, `-o type=oci`) and docker archives (one platform)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bale.errors import NotFound
from bale.exporters.archive_writer import ArchiveWriter
from bale.oci import canonical, mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import CONTAINERD_IMAGE_NAME, REF_NAME, Index, Manifest
from bale.oci.reference import Reference
from bale.store.atomic import atomic_file
from bale.store.compression import decompressed
from bale.store.local import Store

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


@dataclass(frozen=True)
class SaveEntry:
    name: str  # normalized reference, or "" for an unnamed image
    target: Descriptor


def reachable(store: Store, root: Descriptor) -> list[Descriptor]:
    """Every present blob under `root`, parents before children, each once."""
    seen: set[Digest] = set()
    out: list[Descriptor] = []

    def visit(desc: Descriptor, required: bool) -> None:
        if desc.digest in seen:
            return
        if not store.content.exists(desc.digest):
            if required:
                raise NotFound(f"content {desc.digest} ({desc.media_type}) is missing")
            return  # an index's manifest for a platform that was never fetched
        seen.add(desc.digest)
        out.append(desc)
        if mediatype.is_index(desc.media_type):
            for child in store.index(desc).manifests:
                visit(child, required=False)
        elif mediatype.is_manifest(desc.media_type):
            for child in store.manifest(desc).children():
                visit(child, required=True)

    visit(root, required=True)
    return out


def _layout(store: Store, entries: Iterable[SaveEntry]) -> tuple[Index, dict[Digest, Descriptor]]:
    """The layout's index.json (names as containerd's export writes them) and its blobs."""
    annotated: list[Descriptor] = []
    blobs: dict[Digest, Descriptor] = {}
    for entry in entries:
        desc = entry.target
        if entry.name:
            ref = Reference.parse(entry.name)
            desc = desc.with_annotations(
                **{CONTAINERD_IMAGE_NAME: str(ref), REF_NAME: ref.tag or str(ref.digest)}
            )
        annotated.append(desc)
        for blob in reachable(store, entry.target):
            blobs.setdefault(blob.digest, blob)
    return Index(manifests=tuple(annotated)), blobs


def write_oci_archive(store: Store, entries: Iterable[SaveEntry], out: BinaryIO) -> None:
    index, blobs = _layout(store, entries)
    writer = ArchiveWriter(out)
    try:
        writer.add_bytes("oci-layout", OCI_LAYOUT)
        writer.add_bytes("index.json", index.encode())
        for digest in sorted(blobs):
            info = store.content.info(digest)
            with store.content.open(digest, info.size) as reader:
                writer.add_stream(f"blobs/{digest.algorithm}/{digest.hex}", info.size, reader)
                reader.read()  # tar copies exactly `size` bytes; reaching EOF verifies the digest
    except BaseException:
        writer.abandon()
        raise
    writer.close()


def write_oci_dir(store: Store, entries: Iterable[SaveEntry], dest: str) -> None:
    """An OCI image layout as a directory (`-o type=oci,dest=DIR,tar=false`)."""
    root = Path(dest)
    index, blobs = _layout(store, entries)
    for blob in blobs.values():
        path = root / "blobs" / blob.digest.algorithm / blob.digest.hex
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with store.content.open(blob.digest, blob.size) as reader, atomic_file(path) as f:
            while chunk := reader.read(1 << 20):
                f.write(chunk)
    (root / "oci-layout").write_bytes(OCI_LAYOUT)
    (root / "index.json").write_bytes(index.encode())


def write_docker_archive(
    store: Store, images: list[tuple[list[str], Descriptor]], out: BinaryIO
) -> None:
    """A `docker save`-style archive: for each (names, platform manifest), an entry in
    manifest.json; uncompressed layers named by diff id, each written once."""
    writer = ArchiveWriter(out)
    try:
        written: set[str] = set()
        doc = []
        repositories: dict[str, dict[str, str]] = {}
        for names, manifest_desc in images:
            manifest = Manifest.parse(store.read_json_blob(manifest_desc))
            config_bytes = store.read_json_blob(manifest.config)
            config_name = f"blobs/sha256/{Digest.of(config_bytes).hex}"
            if config_name not in written:
                writer.add_bytes(config_name, config_bytes)
                written.add(config_name)
            layer_names = [
                _docker_layer(store, layer, writer, written) for layer in manifest.layers
            ]
            tags = list(dict.fromkeys(Reference.parse(n).familiar() for n in names if n))
            doc.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
            for n in names:
                ref = Reference.parse(n) if n else None
                if ref is not None and ref.tag and layer_names:
                    repositories.setdefault(ref.familiar_name, {})[ref.tag] = layer_names[
                        -1
                    ].rsplit("/", 1)[-1]
        writer.add_bytes("manifest.json", json.dumps(doc, separators=(",", ":")).encode())
        if repositories:
            writer.add_bytes("repositories", canonical.dumps(repositories))
    except BaseException:
        writer.abandon()
        raise
    writer.close()


def _docker_layer(store: Store, layer: Descriptor, writer: ArchiveWriter, written: set[str]) -> str:
    """Docker archives hold uncompressed tars: decompress once to learn the size and name."""
    with tempfile.TemporaryFile() as spool, store.content.open(layer.digest, layer.size) as r:
        _, raw = decompressed(r)
        h = hashlib.sha256()
        size = 0
        while chunk := raw.read(1 << 20):
            h.update(chunk)
            spool.write(chunk)
            size += len(chunk)
        r.read()  # reach EOF so the blob's own digest is verified
        name = f"blobs/sha256/{h.hexdigest()}"
        if name not in written:
            spool.seek(0)
            writer.add_stream(name, size, spool)
            written.add(name)
    return name
