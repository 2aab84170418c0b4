"""Caches named by --cache-from, as a source of step results behind the store's own cache:
the first source with a record for a key wins. Nothing is downloaded to read a cache but
its manifest and config; a layer blob is fetched only when a step needs that filesystem or
the image's outputs need the layer. A cache that cannot be read is a warning, and the build
goes on without it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bale.builder.cache import BuildCache, CacheHit
from bale.builder.remotecache.format import CacheConfig, MountBlob
from bale.builder.remotecache.spec import CacheSpec
from bale.builder.remotecache.store import CacheLocation, location_for
from bale.builder.state import LayerRef
from bale.errors import BaleError
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.store.local import Lease, Store

if TYPE_CHECKING:
    from bale.registry.transport import Registries


class ImportedCaches:
    def __init__(self, store: Store, lease: Lease) -> None:
        self._store = store
        self._lease = lease
        self._records: dict[str, CacheHit] = {}
        self._where: dict[Digest, tuple[CacheLocation, Descriptor]] = {}
        self.mounts: dict[str, tuple[CacheLocation, MountBlob]] = {}
        self._lock = threading.Lock()

    def load(
        self,
        specs: Sequence[CacheSpec],
        registries: Callable[[], Registries],
        warn: Callable[[str], None],
    ) -> None:
        for spec in specs:
            if spec.kind == "inline":
                continue
            try:
                location = location_for(spec.kind, spec.ref, spec.path, spec.tag, registries)
                config = location.read()
            except BaleError as exc:
                warn(f"cache import from {spec.describe()} failed, building without it: {exc}")
                continue
            if config is None:
                warn(f"no cache at {spec.describe()} yet")
                continue
            self.add(location, config)

    def add(self, location: CacheLocation, config: CacheConfig) -> None:
        for record in config.records:
            if record.key in self._records:
                continue  # an earlier source has it: first hit wins
            self._records[record.key] = CacheHit(record.layer, record.created)
            if record.layer is not None:
                desc = record.layer.descriptor
                self._where.setdefault(desc.digest, (location, desc))
        for mount in config.mounts:
            self.mounts.setdefault(mount.id, (location, mount))

    def __len__(self) -> int:
        return len(self._records)

    def lookup(self, key: str) -> CacheHit | None:
        return self._records.get(key)

    def provides(self, digest: Digest) -> bool:
        return digest in self._where

    def fetch(self, digest: Digest) -> None:
        location, desc = self._where[digest]
        with self._lock:
            if not self._store.content.exists(digest):
                location.fetch(self._store, desc, self._lease)

    def fetch_mount(self, mount_id: str) -> MountBlob | None:
        found = self.mounts.get(mount_id)
        if found is None:
            return None
        location, mount = found
        if not self._store.content.exists(mount.blob.digest):
            location.fetch(self._store, mount.blob, self._lease)
        return mount


class ChainedCache:
    """The store's cache, then imported ones. An imported hit is recorded in the store's
    cache once its layer is there (`settle`)."""

    def __init__(self, local: BuildCache, imported: ImportedCaches) -> None:
        self.local = local
        self.imported = imported
        self._pending: dict[str, CacheHit] = {}
        self._lock = threading.Lock()

    def lookup(self, key: str) -> CacheHit | None:
        hit = self.local.lookup(key)
        if hit is not None:
            return hit
        hit = self.imported.lookup(key)
        if hit is not None:
            with self._lock:
                self._pending[key] = hit
        return hit

    def record(self, key: str, layer: LayerRef | None, created: float) -> None:
        self.local.record(key, layer, created)

    def settle(self, content_exists: Callable[[Digest], bool]) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for key, hit in pending.items():
            if hit.layer is None or content_exists(hit.layer.descriptor.digest):
                self.local.record(key, hit.layer, hit.created)
