"""Store metadata in SQLite: images, blob references for GC, labels, leases, settings,
build cache and build history.

The schema is versioned: `MIGRATIONS[i]` takes a database from version i to i + 1, and
opening a store applies whatever is missing inside one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bale.store.sqlite import Database

MIGRATIONS: tuple[str, ...] = (
    # 0 → 1: the initial schema.
    """
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE images (
        mode TEXT NOT NULL,            -- 'containerd' or 'classic': the store mode it belongs to
        name TEXT NOT NULL,            -- normalized reference, or 'sha256:…' for a dangling image
        media_type TEXT NOT NULL,
        digest TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (mode, name)
    );
    CREATE INDEX images_digest ON images (digest);
    -- parent refers to child: what GC follows from the roots (containerd's gc.ref labels).
    CREATE TABLE refs (
        parent TEXT NOT NULL,
        child TEXT NOT NULL,
        PRIMARY KEY (parent, child)
    );
    CREATE INDEX refs_child ON refs (child);
    CREATE TABLE blob_labels (
        digest TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (digest, key)
    );
    CREATE TABLE leases (
        id TEXT PRIMARY KEY,
        created REAL NOT NULL,
        expires REAL NOT NULL          -- unix time; a lease past it no longer protects
    );
    -- Content kept alive by a long-lived owner other than an image (a build cache record).
    CREATE TABLE pins (
        owner TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (owner, digest)
    );
    CREATE TABLE lease_resources (
        lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        PRIMARY KEY (lease, digest)
    );
    """,
    # 1 → 2: build cache records and the context file-hash cache.
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,          -- cache key of a step
        layer TEXT,                    -- JSON descriptor of the layer it added, NULL if none
        diff_id TEXT,
        created REAL NOT NULL,
        last_used REAL NOT NULL
    );
    CREATE TABLE context_hashes (
        path TEXT PRIMARY KEY,         -- absolute path of a context file
        stat TEXT NOT NULL,            -- dev, inode, size, mtime, ctime, mode: unchanged means same
        digest TEXT NOT NULL
    );
    """,
    # 2 → 3: what each step's cache key was last made of (hashed), to explain misses.
    """
    CREATE TABLE step_history (
        step TEXT PRIMARY KEY,         -- a step's place in a build: context, platform, stage, n
        key TEXT NOT NULL,             -- its cache key when last solved
        parts TEXT NOT NULL,           -- JSON: hashes of its definition fields, inputs, content
        files BLOB,                    -- zlib JSON: path -> hash of what it read
        updated REAL NOT NULL
    );
    """,
    # 3 → 4: build history records (bale.store.history); their log blobs are pinned.
    """
    CREATE TABLE build_history (
        id TEXT PRIMARY KEY,           -- the record's reference (25 lowercase letters, digits)
        created REAL NOT NULL,
        completed REAL NOT NULL,
        status TEXT NOT NULL,          -- 'completed', 'error' or 'canceled'
        name TEXT NOT NULL,
        record TEXT NOT NULL           -- JSON (bale.builder.history)
    );
    CREATE INDEX build_history_created ON build_history (created);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class Metadata:
    """The store's metadata database (see bale.store.sqlite for locking and migrations)."""

    def __init__(self, path: Path) -> None:
        self._database = Database(path, MIGRATIONS)
        self.path = path
        self._db = self._database.db

    def close(self) -> None:
        self._database.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._database.transaction() as db:
            yield db

    def query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        return self._database.query(sql, tuple(params))

    # -- settings ------------------------------------------------------------------------

    def get_setting(self, key: str, default: str) -> str:
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- references and labels ------------------------------------------------------------

    def add_refs(self, parent: str, children: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO refs (parent, child) VALUES (?, ?)",
                [(parent, c) for c in children],
            )

    def children(self, parent: str) -> list[str]:
        return [r[0] for r in self.query("SELECT child FROM refs WHERE parent = ?", (parent,))]

    def set_label(self, digest: str, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO blob_labels (digest, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT(digest, key) DO UPDATE SET value = excluded.value",
                (digest, key, value),
            )

    def labels(self, digest: str) -> dict[str, str]:
        rows = self.query("SELECT key, value FROM blob_labels WHERE digest = ?", (digest,))
        return {str(k): str(v) for k, v in rows}

    def forget_blob(self, db: sqlite3.Connection, digest: str) -> None:
        db.execute("DELETE FROM refs WHERE parent = ?", (digest,))
        db.execute("DELETE FROM blob_labels WHERE digest = ?", (digest,))

    # -- leases --------------------------------------------------------------------------

    def create_lease(self, lease_id: str, ttl: float) -> None:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO leases (id, created, expires) VALUES (?, ?, ?)",
                (lease_id, now, now + ttl),
            )

    def add_lease_resource(self, lease_id: str, digest: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO lease_resources (lease, digest) VALUES (?, ?)",
                (lease_id, digest),
            )

    def delete_lease(self, lease_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM leases WHERE id = ?", (lease_id,))

    def leased_digests(self, db: sqlite3.Connection, now: float) -> set[str]:
        rows = db.execute(
            "SELECT r.digest FROM lease_resources r JOIN leases l ON l.id = r.lease "
            "WHERE l.expires > ?",
            (now,),
        ).fetchall()
        return {str(r[0]) for r in rows}
