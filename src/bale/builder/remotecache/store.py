"""Where a cache lives: a registry reference or an OCI layout directory. Both read a cache
(manifest → config), bring its blobs into the content store on demand, and write a merged
cache back (blobs first, the manifest last, so a reader never sees a cache whose blobs are
missing).

Concurrent writers to one place are merged, not overwritten: a writer re-reads what is
there just before it writes, and after writing checks its manifest is the one named; if
another writer came in between, it merges again.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from bale.builder.remotecache.format import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    INLINE_KEY,
    MAX_CONFIG,
    CacheConfig,
    merge,
)
from bale.errors import BaleError, InvalidArgument, NotFound, RegistryError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.reference import Reference
from bale.store.atomic import atomic_file, write_atomic
from bale.store.compression import Readable
from bale.store.local import Lease, Store

if TYPE_CHECKING:
    from bale.registry.client import Repository
    from bale.registry.transport import Registries

REF_NAME = "org.opencontainers.image.ref.name"
_TRIES = 5


class CacheLocation(Protocol):
    def describe(self) -> str: ...

    def read(self) -> CacheConfig | None:
        """The cache there (None: there is none yet); InvalidArgument/RegistryError when
        it cannot be read."""
        ...

    def fetch(self, store: Store, blob: Descriptor, lease: Lease) -> None:
        """Bring one of the cache's blobs into the content store."""
        ...

    def write(
        self,
        store: Store,
        new: CacheConfig,
        lease: Lease,
        combine: Callable[[CacheConfig | None, CacheConfig], CacheConfig],
    ) -> CacheConfig:
        """Merge `new` into what is there (with `combine`) and write it; what was written."""
        ...


def _manifest(config: bytes, blobs: list[Descriptor]) -> tuple[bytes, Descriptor]:
    config_desc = Descriptor(CONFIG_MEDIA_TYPE, Digest.of(config), len(config))
    manifest = Manifest(config=config_desc, layers=tuple(blobs), artifact_type=ARTIFACT_TYPE)
    return manifest.encode(), config_desc


class RegistryCache:
    def __init__(self, ref: str, registries: Registries) -> None:
        from bale.registry.client import Repository

        self.ref = Reference.parse(ref)
        self._registries = registries
        self._repo: Repository = Repository(
            registries.session(self.ref.domain), self.ref.path, push=True
        )
        self._reader: Repository = Repository(registries.session(self.ref.domain), self.ref.path)

    def describe(self) -> str:
        return str(self.ref)

    @property
    def _tag(self) -> str:
        return str(self.ref.digest) if self.ref.digest else self.ref.tag or "latest"

    def _current(self) -> tuple[Digest | None, CacheConfig | None]:
        try:
            doc = self._reader.get_manifest(self._tag)
        except RegistryError as exc:
            if exc.status == 404 or exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"):
                return None, None
            raise
        if mediatype.is_manifest(doc.descriptor.media_type):
            manifest = Manifest.parse(doc.data)
            if manifest.config.media_type == CONFIG_MEDIA_TYPE:
                data = self._reader.read_blob(manifest.config, limit=MAX_CONFIG)
                return doc.descriptor.digest, CacheConfig.parse(data)
            manifests = [manifest]
        elif mediatype.is_index(doc.descriptor.media_type):
            index = Index.parse(doc.data)
            manifests = [
                Manifest.parse(self._reader.get_manifest(str(d.digest), d).data)
                for d in index.image_manifests()
                if d.platform is None or d.platform.os != "unknown"
            ]
        else:
            raise InvalidArgument(f"{self.ref} is neither a cache nor an image")
        # An image: its configs may hold an inline cache (--cache-to type=inline).
        found = CacheConfig()
        for manifest in manifests:
            config = json.loads(self._reader.read_blob(manifest.config, limit=MAX_CONFIG))
            inline = config.get(INLINE_KEY) if isinstance(config, dict) else None
            if inline is not None:
                part = CacheConfig.parse(json.dumps(inline).encode())
                found = CacheConfig(found.records + part.records, found.mounts + part.mounts)
        if not found.records:
            raise InvalidArgument(f"{self.ref} is an image without an inline cache")
        return None, found

    def read(self) -> CacheConfig | None:
        return self._current()[1]

    def fetch(self, store: Store, blob: Descriptor, lease: Lease) -> None:
        lease.add(blob.digest)
        self._reader.fetch_blob(store.content, blob)

    def write(
        self,
        store: Store,
        new: CacheConfig,
        lease: Lease,
        combine: Callable[[CacheConfig | None, CacheConfig], CacheConfig],
    ) -> CacheConfig:
        from bale.registry.push import push_blob
        from bale.registry.transfer import source_repositories

        chunk = self._registries.options.chunk_size
        for _ in range(_TRIES):
            seen, old = self._current()
            merged = combine(old, new)
            for blob in merged.blobs():
                if self._repo.blob_exists(blob.digest):
                    continue
                sources = source_repositories(store, blob.digest, self.ref.domain)
                push_blob(self._repo, blob, _opener(store, blob), sources, chunk)
            config = merged.encode()
            data, config_desc = _manifest(config, merged.blobs())
            if not self._repo.blob_exists(config_desc.digest):
                self._repo.upload_blob(config_desc, _bytes_opener(config), chunk)
            if self._current()[0] != seen:
                continue  # another writer came in: merge with what it wrote
            written = self._repo.put_manifest(self._tag, data, mediatype.OCI_MANIFEST)
            time.sleep(0.05)
            if self._current()[0] == written:
                return merged
        raise RegistryError(f"{self.ref}: other writers kept changing the cache; gave up")


def _opener(store: Store, blob: Descriptor) -> Callable[[], BinaryIO]:
    def open_blob() -> BinaryIO:
        return cast(BinaryIO, store.content.open(blob.digest, blob.size))

    return open_blob


def _bytes_opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


class LocalCache:
    """An OCI layout directory: `index.json` names the cache manifest by its tag."""

    def __init__(self, path: str, tag: str) -> None:
        self.root = Path(path)
        self.tag = tag

    def describe(self) -> str:
        return f"{self.root}:{self.tag}"

    def _blob(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def _index(self) -> Index | None:
        path = self.root / "index.json"
        if not path.is_file():
            return None
        return Index.parse(path.read_bytes())

    def read(self) -> CacheConfig | None:
        if not self.root.exists():
            return None
        index = self._index()
        if index is None:
            return None
        for desc in index.manifests:
            if dict(desc.annotations).get(REF_NAME) == self.tag:
                manifest = Manifest.parse(self._read(desc))
                if manifest.config.media_type != CONFIG_MEDIA_TYPE:
                    raise InvalidArgument(f"{self.describe()} is not a bale cache")
                return CacheConfig.parse(self._read(manifest.config))
        return None

    def _read(self, desc: Descriptor) -> bytes:
        try:
            data = self._blob(desc.digest).read_bytes()
        except OSError as exc:
            raise NotFound(f"{self.describe()}: blob {desc.digest}: {exc.strerror}") from None
        if Digest.of(data, desc.digest.algorithm) != desc.digest:
            raise InvalidArgument(f"{self.describe()}: blob {desc.digest} is corrupt")
        return data

    def fetch(self, store: Store, blob: Descriptor, lease: Lease) -> None:
        try:
            with open(self._blob(blob.digest), "rb") as f:
                store.ingest(f, expected=blob.digest, size=blob.size, lease=lease)
        except OSError as exc:
            raise NotFound(f"{self.describe()}: blob {blob.digest}: {exc.strerror}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".bale-cache.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def write(
        self,
        store: Store,
        new: CacheConfig,
        lease: Lease,
        combine: Callable[[CacheConfig | None, CacheConfig], CacheConfig],
    ) -> CacheConfig:
        del lease  # blobs are read from the store, nothing new is written there
        with self._locked():
            try:
                old = self.read()
            except BaleError:
                old = None  # an unreadable cache is replaced
            merged = combine(old, new)
            for blob in merged.blobs():
                path = self._blob(blob.digest)
                if path.exists():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with store.content.open(blob.digest, blob.size) as reader:
                    _copy_to(reader, path)
            config = merged.encode()
            data, config_desc = _manifest(config, merged.blobs())
            manifest_desc = Descriptor(
                mediatype.OCI_MANIFEST,
                Digest.of(data),
                len(data),
                annotations=((REF_NAME, self.tag),),
            )
            for payload, desc in ((config, config_desc), (data, manifest_desc)):
                path = self._blob(desc.digest)
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    write_atomic(path, payload)
            index = self._index()
            others = [
                d
                for d in (index.manifests if index else ())
                if dict(d.annotations).get(REF_NAME) != self.tag
            ]
            write_atomic(self.root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            write_atomic(
                self.root / "index.json", Index(manifests=(*others, manifest_desc)).encode()
            )
            return merged


def _copy_to(reader: Readable, path: Path) -> None:
    with atomic_file(path) as out:
        while chunk := reader.read(1 << 20):
            out.write(chunk)


def location_for(
    spec_kind: str, ref: str, path: str, tag: str, registries: Callable[[], Registries]
) -> CacheLocation:
    if spec_kind == "registry":
        return RegistryCache(ref, registries())
    if spec_kind == "local":
        return LocalCache(path, tag)
    raise InvalidArgument(f"no cache location for type={spec_kind}")


def combine_with(
    max_age: float, max_records: int
) -> Callable[[CacheConfig | None, CacheConfig], CacheConfig]:
    def combine(old: CacheConfig | None, new: CacheConfig) -> CacheConfig:
        return merge(old, new, now=time.time(), max_age=max_age, max_records=max_records)

    return combine
