"""The store's SQLite databases (metadata, snapshots): one way to open them, to migrate
their versioned schemas, and to write in a transaction.

A writer that waits past the busy timeout gets `Unavailable` with a hint, never a raw
"database is locked".
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bale.errors import FailedPrecondition, Unavailable

BUSY_TIMEOUT = 30.0


@contextmanager
def busy_is_unavailable(path: Path) -> Iterator[None]:
    """Another process holding the store's write lock past the busy timeout is a clear error
    to retry, not a crash."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise Unavailable(
                f"the store at {path.parent} is busy: another bale process held it for too long",
                hint="try again when the other command (a long garbage collection?) has ended",
            ) from None
        raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit mid-transaction)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class Database:
    """One connection, shared by a process's threads under a lock; WAL, so several processes
    read while one writes."""

    def __init__(self, path: Path, migrations: Sequence[str], *, synchronous: str = "NORMAL"):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._wal()
        # WAL + NORMAL never corrupts; a power cut may lose the last transactions, and blobs
        # (fsynced on commit) are what must survive. FULL made every small write an fsync.
        self.db.execute(f"PRAGMA synchronous={synchronous}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate(migrations)

    def _wal(self) -> None:
        # Switching a new database to WAL takes an exclusive lock without waiting on the busy
        # handler: processes opening one store at once retry for a while.
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    with busy_is_unavailable(self.path):
                        raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    def _migrate(self, migrations: Sequence[str]) -> None:
        version_now = len(migrations)
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > version_now:
                raise FailedPrecondition(
                    f"{self.path} has schema version {version}, newer than this bale "
                    f"understands ({version_now})",
                    hint="upgrade bale or use another --root",
                )
            for step in range(version, version_now):
                for statement in _statements(migrations[step]):
                    db.execute(statement)
            if version != version_now:
                db.execute(f"PRAGMA user_version={version_now}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: writers queue up instead of failing on upgrade from read."""
        with self.lock:
            with busy_is_unavailable(self.path):
                self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                with busy_is_unavailable(self.path):
                    self.db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self.lock, busy_is_unavailable(self.path):
            return list(self.db.execute(sql, tuple(params)).fetchall())
