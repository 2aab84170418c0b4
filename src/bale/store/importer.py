"""`bale import`: a root filesystem tarball becomes a one-layer image for one platform."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import BinaryIO

from bale.errors import AlreadyExists, InvalidArgument
from bale.oci import mediatype
from bale.oci.config import HistoryEntry, ImageConfig, RuntimeConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform
from bale.store.compression import Readable, decompressed, gzip_compressor
from bale.store.images import StoreMode
from bale.store.local import Lease, Store


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spool_tar(stream: BinaryIO) -> tuple[tempfile.SpooledTemporaryFile[bytes], Digest]:
    """Uncompressed copy of the input and its diff id; fails unless it is a readable tar."""
    _, raw = decompressed(stream)
    # Returned open: the caller closes it.
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(64 << 20)  # noqa: SIM115
    h = hashlib.sha256()
    while chunk := raw.read(1 << 20):
        h.update(chunk)
        spool.write(chunk)
    spool.seek(0)
    try:
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            count = sum(1 for _ in tar)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"not a valid tar archive: {exc}") from None
    if count == 0 and spool.tell() == 0:
        raise InvalidArgument("empty input: expected a tar archive")
    spool.seek(0)
    return spool, Digest("sha256", h.hexdigest())


def write_gzip_layer(store: Store, raw: Readable, lease: Lease) -> Descriptor:
    """Compress an uncompressed tar into the content store as an OCI gzip layer."""
    ref = f"layer-{lease.id}-{id(raw)}"
    writer = store.content.writer(ref)
    try:
        comp = gzip_compressor()
        while chunk := raw.read(1 << 20):
            writer.write(comp.compress(chunk))
        writer.write(comp.flush())
        digest = writer.digest()
        lease.add(digest)
        size = writer.offset
        try:
            writer.commit(size, digest)
            lease.created.add(digest)
        except AlreadyExists:
            pass  # the same layer is already stored: nothing to write
    except BaseException:
        writer.abort()
        raise
    return Descriptor(mediatype.OCI_LAYER_GZIP, digest, size)


def image_manifest(
    store: Store,
    lease: Lease,
    config: ImageConfig,
    layers: list[Descriptor],
    annotations: dict[str, str] | None = None,
) -> Descriptor:
    """Store a config and its manifest; the descriptor carries the config's platform."""
    config_desc = store.put_document(config.encode(), mediatype.OCI_CONFIG, lease)
    manifest = Manifest(
        config=config_desc,
        layers=tuple(layers),
        annotations=tuple(sorted((annotations or {}).items())),
    )
    return store.put_document(
        manifest.encode(), mediatype.OCI_MANIFEST, lease, platform=config.platform
    )


def add_to_index(
    store: Store, lease: Lease, existing: Descriptor | None, manifest: Descriptor
) -> Descriptor:
    """An index holding `manifest`, replacing the same platform in the existing image."""
    assert manifest.platform is not None
    entries: list[Descriptor] = []
    if existing is not None:
        for plat, desc in store.platform_manifests(existing):
            if plat != manifest.platform:
                entries.append(desc if desc.platform else _with_platform(desc, plat))
    entries.append(manifest)
    entries.sort(key=lambda d: d.platform.sort_key() if d.platform else ("", "", ""))
    index = Index(manifests=tuple(entries))
    return store.put_document(index.encode(), mediatype.OCI_INDEX, lease)


def _with_platform(desc: Descriptor, platform: Platform) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size, platform, desc.annotations)


def import_rootfs(
    store: Store,
    stream: BinaryIO,
    name: str,
    platform: Platform,
    *,
    message: str = "",
    changes: RuntimeConfig | None = None,
    created: float | None = None,
) -> Descriptor:
    """Import a rootfs tar (plain, gzip, zstd, xz or bzip2) as `name` for `platform`.

    In containerd mode the image is an index and a second platform joins the same index;
    in classic mode the name points at the platform's manifest alone.
    """
    when = rfc3339(created if created is not None else time.time())
    spool, diff_id = _spool_tar(stream)
    with spool, store.lease() as lease:
        layer = write_gzip_layer(store, spool, lease)
        config = ImageConfig(
            platform=platform,
            config=changes or RuntimeConfig(),
            diff_ids=(diff_id,),
            history=(
                HistoryEntry(
                    created=when,
                    created_by="bale import",
                    comment=message or "Imported from tarball",
                ),
            ),
            created=when,
        )
        manifest = image_manifest(store, lease, config, [layer])
        # Read, extend and rename the index as one step: concurrent imports of other
        # platforms to the same name would otherwise drop each other's platform.
        with _names_locked(store):
            if store.mode() is StoreMode.CLASSIC:
                target = manifest
            else:
                existing = store.images().find(name)
                target = add_to_index(store, lease, existing.target if existing else None, manifest)
            store.set_image(name, target, keep_replaced=False)
    return target


@contextmanager
def _names_locked(store: Store) -> Iterator[None]:
    fd = os.open(store.root / "import.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
