"""The build cache: step cache keys → the layer the step added (or none) and when it ran,
plus the context file-hash cache. Every SQL statement about either lives here.

    cache = BuildCache(store)
    cache.lookup(key) -> CacheHit | None     a record whose layer is still in the store
    cache.record(key, layer, created)        pins the layer for as long as the record lives
    cache.prune() -> records removed

    hashes = FileHashes(store.meta)          file digests by path and stat, read once per build,
    hashes.get(path, stat) / put(...)         written in one transaction by flush()
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Protocol

from bale.builder.explain import KeyParts
from bale.builder.state import LayerRef
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.store.local import Store
from bale.store.metadata import Metadata

_PIN_OWNER = "cache:"


@dataclass(frozen=True)
class CacheHit:
    layer: LayerRef | None  # None: the step changed no file
    created: float


class CacheSource(Protocol):
    """Where the solver finds and keeps step results: the store's own cache, and caches
    imported with --cache-from behind it (see bale.builder.remotecache)."""

    def lookup(self, key: str) -> CacheHit | None: ...

    def record(self, key: str, layer: LayerRef | None, created: float) -> None: ...


class BuildCache:
    def __init__(self, store: Store) -> None:
        self._store = store

    def lookup(self, key: str) -> CacheHit | None:
        rows = self._store.meta.query(
            "SELECT layer, diff_id, created FROM build_cache WHERE key = ?", (key,)
        )
        if not rows:
            return None
        layer_json, diff_id, created = rows[0]
        if layer_json is None:
            return CacheHit(None, float(created))
        desc = Descriptor.from_json(json.loads(str(layer_json)))
        if not self._store.content.exists(desc.digest):
            return None
        return CacheHit(LayerRef(desc, Digest.parse(str(diff_id))), float(created))

    def record(self, key: str, layer: LayerRef | None, created: float) -> None:
        with self._store.meta.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO build_cache (key, layer, diff_id, created, last_used) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    json.dumps(layer.descriptor.to_json()) if layer else None,
                    str(layer.diff_id) if layer else None,
                    created,
                    created,
                ),
            )
            db.execute("DELETE FROM pins WHERE owner = ?", (_PIN_OWNER + key,))
            if layer is not None:
                db.execute(
                    "INSERT OR IGNORE INTO pins (owner, digest) VALUES (?, ?)",
                    (_PIN_OWNER + key, str(layer.descriptor.digest)),
                )

    def prune(self) -> int:
        """Drop every record and what it pins, and the file-hash cache."""
        with self._store.meta.transaction() as db:
            count = int(db.execute("SELECT COUNT(*) FROM build_cache").fetchone()[0])
            db.execute("DELETE FROM build_cache")
            db.execute("DELETE FROM pins WHERE owner LIKE ?", (_PIN_OWNER + "%",))
            db.execute("DELETE FROM context_hashes")
            db.execute("DELETE FROM step_history")
        return count


class StepHistory:
    """What each step's key was last made of (see bale.builder.explain), read on a miss and
    written once per build."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, KeyParts]] = {}

    def get(self, step: str) -> tuple[str, KeyParts | None] | None:
        """(the key last seen for `step`, its parts), or None for a step never seen."""
        rows = self._meta.query(
            "SELECT key, parts, files FROM step_history WHERE step = ?", (step,)
        )
        if not rows:
            return None
        key, head, files = rows[0]
        return str(key), KeyParts.decode(str(head), bytes(files) if files is not None else None)

    def put(self, step: str, key: str, parts: KeyParts) -> None:
        with self._lock:
            self._pending[step] = (key, parts)

    def flush(self, now: float) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        rows = []
        for step, (key, parts) in pending.items():
            head, files = parts.encode()
            rows.append((step, key, head, files, now))
        with self._meta.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO step_history (step, key, parts, files, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )


class FileHashes:
    """Context file digests keyed by path and stat (dev, inode, size, mtime, ctime, mode):
    a file whose stat is unchanged is not read again. New digests are kept in memory and
    written in one transaction, not one per file."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, str]] = {}
        self._known: dict[str, tuple[str, str]] = {}
        self._loaded: set[str] = set()

    def preload(self, root: str) -> None:
        """Read every digest known under directory `root` in one query (a context of 20,000
        files is one SELECT, not 20,000)."""
        with self._lock:
            if root in self._loaded:
                return
            self._loaded.add(root)
        prefix = root.rstrip("/") + "/"
        rows = self._meta.query(
            "SELECT path, stat, digest FROM context_hashes WHERE path >= ? AND path < ?",
            (prefix, prefix[:-1] + "0"),  # "0" sorts right after "/"
        )
        with self._lock:
            for path, stat_key, digest in rows:
                self._known.setdefault(str(path), (str(stat_key), str(digest)))

    def get(self, path: str, stat_key: str) -> str | None:
        # Reads of these dicts are atomic; only writers take the lock.
        found = self._pending.get(path) or self._known.get(path)
        if found is not None and found[0] == stat_key:
            return found[1]
        loaded = any(path.startswith(r.rstrip("/") + "/") for r in self._loaded)
        if found is not None:
            return found[1] if found[0] == stat_key else None
        if loaded:
            return None
        rows = self._meta.query(
            "SELECT digest FROM context_hashes WHERE path = ? AND stat = ?", (path, stat_key)
        )
        return str(rows[0][0]) if rows else None

    def put(self, path: str, stat_key: str, digest: str) -> None:
        with self._lock:
            self._pending[path] = (stat_key, digest)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        with self._meta.transaction() as db:
            db.executemany(
                "INSERT INTO context_hashes (path, stat, digest) VALUES (?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET stat = excluded.stat, digest = excluded.digest",
                [(path, stat_key, digest) for path, (stat_key, digest) in pending.items()],
            )
