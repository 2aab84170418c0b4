"""The local store: content + metadata + image records, in one of two modes."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bale.errors import (
    AlreadyExists,
    BaleError,
    InvalidArgument,
    MultiPlatformRefused,
    NotFound,
)
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform, host_platform
from bale.store.content import ContentStore
from bale.store.images import ImageTable, StoreMode, image_id
from bale.store.metadata import Metadata


def default_root() -> Path:
    env = os.environ.get("BALE_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/bale")
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "bale"


@dataclass(frozen=True)
class Lease:
    """Content written under a lease survives garbage collection until the lease ends."""

    id: str
    store: Store
    # Digests this lease's writers created (not merely found): what a rollback removes.
    created: set[Digest] = field(default_factory=set)

    def add(self, digest: Digest) -> None:
        self.store.meta.add_lease_resource(self.id, str(digest))

    def note_created(self, digest: Digest, created: bool) -> Digest:
        if created:
            self.created.add(digest)
        return digest


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.content = ContentStore(root / "content")
        self.meta = Metadata(root / "metadata.db")

    def close(self) -> None:
        self.meta.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mode ----------------------------------------------------------------------------

    def mode(self) -> StoreMode:
        return StoreMode.parse(self.meta.get_setting("mode", StoreMode.CONTAINERD.value))

    def set_mode(self, mode: StoreMode) -> None:
        self.meta.set_setting("mode", mode.value)

    def require_multi_platform(self, platforms: int) -> None:
        """The check a multi-platform build makes before any work: classic mode refuses it."""
        if platforms > 1 and self.mode() is StoreMode.CLASSIC:
            raise MultiPlatformRefused()

    # -- images --------------------------------------------------------------------------

    def images(self) -> ImageTable:
        """Read-only view of the active mode's images (use `edit_images` to change them)."""
        return ImageTable(self.meta._db, self.mode())

    @contextmanager
    def edit_images(self) -> Iterator[ImageTable]:
        mode = self.mode()
        with self.meta.transaction() as db:
            yield ImageTable(db, mode)

    def set_image(
        self,
        name: str,
        target: Descriptor,
        labels: dict[str, str] | None = None,
        *,
        keep_replaced: bool = True,
    ) -> None:
        """Name an image, after checking it fits the mode (classic holds no index)."""
        self.check_fits_mode(target)
        with self.edit_images() as images:
            images.put(name, target, labels, keep_replaced=keep_replaced)

    def check_fits_mode(self, target: Descriptor) -> None:
        if self.mode() is StoreMode.CLASSIC and mediatype.is_index(target.media_type):
            raise MultiPlatformRefused()

    # -- documents -----------------------------------------------------------------------

    def put_blob(self, data: bytes, lease: Lease | None = None) -> tuple[Digest, bool]:
        digest = Digest.of(data)
        if lease is not None:
            lease.add(digest)
        digest, created = self.content.put(data, digest)
        if lease is not None:
            lease.note_created(digest, created)
        return digest, created

    def put_document(
        self,
        data: bytes,
        media_type: str,
        lease: Lease | None = None,
        *,
        platform: Platform | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Descriptor:
        """Store a manifest, index or config and record what it refers to for GC."""
        digest, _ = self.put_blob(data, lease)
        self.record_refs(digest, data, media_type)
        return Descriptor(
            media_type,
            digest,
            len(data),
            platform=platform,
            annotations=tuple(sorted((annotations or {}).items())),
        )

    def record_refs(self, digest: Digest, data: bytes, media_type: str) -> None:
        if mediatype.is_manifest(media_type):
            children = Manifest.parse(data).children()
        elif mediatype.is_index(media_type):
            children = Index.parse(data).children()
        else:
            return
        self.meta.add_refs(str(digest), (str(c.digest) for c in children))

    def ingest(
        self,
        stream: BinaryIO,
        *,
        expected: Digest | None = None,
        size: int | None = None,
        lease: Lease | None = None,
    ) -> tuple[Digest, bool]:
        """Stream content in, verified; leased before it becomes visible."""
        ref = f"ingest-{os.getpid()}-{secrets.token_hex(8)}"
        if expected is not None:
            if lease is not None:
                lease.add(expected)
            digest, created = self.content.ingest_stream(stream, ref, expected, size)
            if lease is not None:
                lease.note_created(digest, created)
            return digest, created
        writer = self.content.writer(ref)
        try:
            while chunk := stream.read(1 << 20):
                writer.write(chunk)
            digest = writer.digest()
            if lease is not None:
                lease.add(digest)
            try:
                writer.commit(size, digest)
            except AlreadyExists:
                return digest, False
            if lease is not None:
                lease.created.add(digest)
            return digest, True
        except BaseException:
            writer.abort()
            raise

    def read_json_blob(self, desc: Descriptor) -> bytes:
        return self.content.read_bytes(desc.digest, desc.size)

    def manifest(self, desc: Descriptor) -> Manifest:
        return Manifest.parse(self.read_json_blob(desc))

    def index(self, desc: Descriptor) -> Index:
        return Index.parse(self.read_json_blob(desc))

    def config(self, desc: Descriptor) -> ImageConfig:
        return ImageConfig.parse(self.read_json_blob(desc))

    def platform_manifests(self, target: Descriptor) -> list[tuple[Platform, Descriptor]]:
        """(platform, manifest descriptor) for each image manifest the target holds."""
        if mediatype.is_manifest(target.media_type):
            config = self.config(self.manifest(target).config)
            return [(config.platform, target)]
        if mediatype.is_index(target.media_type):
            out: list[tuple[Platform, Descriptor]] = []
            for child in self.index(target).image_manifests():
                if child.platform is not None:
                    out.append((child.platform, child))
                elif self.content.exists(child.digest):
                    out.extend(self.platform_manifests(child))
            return out
        raise InvalidArgument(f"unsupported image media type {target.media_type!r}")

    def select_platform(self, target: Descriptor, platform: Platform | None) -> Descriptor:
        """The manifest of `target` best matching `platform` (default: this host)."""
        want = platform or host_platform()
        best: tuple[int, Descriptor] | None = None
        for plat, desc in self.platform_manifests(target):
            rank = want.rank(plat)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, desc)
        if best is None:
            raise NotFound(f"image has no manifest for platform {want}")
        return best[1]

    def resolve(self, name: str) -> Descriptor:
        from bale.oci.reference import Reference

        try:
            ref = Reference.parse(name)
        except BaleError:
            ref = None
        images = self.images()
        if ref is not None:
            found = images.find(str(ref))
            if found is not None:
                return found.target
        # An image ID (digest or its prefix), as docker accepts.
        candidate = name.removeprefix("sha256:")
        if 4 <= len(candidate) <= 64 and all(c in "0123456789abcdef" for c in candidate):
            matches = {
                r.target.digest: r.target
                for r in images.all()
                if r.target.digest.hex.startswith(candidate)
                or self._config_id(r.target).startswith(candidate)
            }
            if len(matches) == 1:
                return next(iter(matches.values()))
        raise NotFound(f"No such image: {name}")

    def image_id(self, target: Descriptor) -> str:
        """The image's ID as `bale images` shows it in this store's mode (see images.image_id):
        only the classic store names a plain manifest by its config."""
        if self.mode() is StoreMode.CLASSIC:
            return image_id(target, self._config_digest(target))
        return str(target.digest)

    def _config_digest(self, target: Descriptor) -> Digest | None:
        if not mediatype.is_manifest(target.media_type):
            return None
        try:
            return self.manifest(target).config.digest
        except BaleError:
            return None

    def _config_id(self, target: Descriptor) -> str:
        config = self._config_digest(target)
        return config.hex if config is not None else ""

    # -- leases --------------------------------------------------------------------------

    @contextmanager
    def lease(self, ttl: float = 24 * 3600, *, rollback: bool = True) -> Iterator[Lease]:
        """Protect content while it is written. When the block fails and `rollback` is set,
        the blobs it created and nothing else refers to are removed: the store is as before."""
        lease_id = f"lease-{os.getpid()}-{secrets.token_hex(6)}"
        self.meta.create_lease(lease_id, ttl)
        lease = Lease(lease_id, self)
        try:
            yield lease
        except BaseException:
            if rollback:
                self.discard_unreferenced(lease.created, lease_id)
            raise
        finally:
            self.meta.delete_lease(lease_id)

    def discard_unreferenced(self, digests: Iterable[Digest], lease_id: str) -> None:
        """Remove the blobs nothing refers to: no image, no parent outside `digests`, no other
        live lease. What a failed write (a load, a pull, a build) created leaves no trace."""
        digests = set(digests)
        with self.meta.transaction() as db:
            for digest in digests:
                text = str(digest)
                named = db.execute("SELECT 1 FROM images WHERE digest = ?", (text,)).fetchone()
                parents = db.execute("SELECT parent FROM refs WHERE child = ?", (text,)).fetchall()
                outside = [p for p in parents if Digest.parse(str(p[0])) not in digests]
                other_lease = db.execute(
                    "SELECT 1 FROM lease_resources r JOIN leases l ON l.id = r.lease "
                    "WHERE r.digest = ? AND r.lease != ? AND l.expires > ?",
                    (text, lease_id, time.time()),
                ).fetchone()
                if named or outside or other_lease:
                    continue
                try:
                    self.content.delete(digest)
                except NotFound:
                    pass
                self.meta.forget_blob(db, text)
