"""Build history records in the store: one row per build (its JSON record) and the log blobs
it pins, so garbage collection keeps a record's logs for as long as the record lives.

    history = History(store)
    history.put(entry, blobs)            inserts the record, pins its blobs, applies retention
    history.resolve("^1")                the latest record (also an id or a unique id prefix)

Retention, as BuildKit's `[history]` section: at most `max_entries` records, none older than
`max_age` seconds (defaults 50 and 48 h); 0 turns a limit off. The store settings
`history.max-entries` / `history.max-age` set them, and the environment variables
BALE_HISTORY_MAX_ENTRIES / BALE_HISTORY_MAX_AGE override both.

Step logs are zstd-compressed blobs in the content store, kept whole (no size cut).
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import zstandard

from bale.errors import AlreadyExists, InvalidArgument, NotFound
from bale.oci.digest import Digest
from bale.store.local import Lease, Store

LOG_MEDIA_TYPE = "application/vnd.bale.history.log.v0+zstd"
_PIN_OWNER = "history:"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id() -> str:
    """A record reference shaped like BuildKit's (25 lowercase letters and digits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(25))


def parse_duration(text: str) -> float:
    """Seconds from `172800`, `48h`, `30m`, `2d`, `1h30m`."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument(f"invalid duration {text!r}", hint="use seconds or e.g. 48h, 30m")
    scale = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(n) * scale[u] for n, u in parts)


@dataclass(frozen=True)
class Retention:
    max_entries: int = 50
    max_age: float = 48 * 3600.0

    @staticmethod
    def load(store: Store) -> Retention:
        entries = os.environ.get("BALE_HISTORY_MAX_ENTRIES") or store.meta.get_setting(
            "history.max-entries", "50"
        )
        age = os.environ.get("BALE_HISTORY_MAX_AGE") or store.meta.get_setting(
            "history.max-age", str(48 * 3600)
        )
        try:
            count = int(entries)
        except ValueError:
            raise InvalidArgument(
                f"invalid history max entries {entries!r}", hint="a whole number, 0 for no limit"
            ) from None
        return Retention(max(0, count), max(0.0, parse_duration(age)))


@dataclass(frozen=True)
class HistoryEntry:
    id: str
    created: float
    completed: float
    status: str  # completed, error, canceled
    name: str
    record: str  # JSON text


class History:
    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, entry: HistoryEntry, blobs: Iterable[Digest], *, replace: bool = False) -> None:
        """Insert the record and pin its blobs in one transaction, then apply retention."""
        with self.store.meta.transaction() as db:
            if db.execute("SELECT 1 FROM build_history WHERE id = ?", (entry.id,)).fetchone():
                if not replace:
                    raise AlreadyExists(f"build record {entry.id} already exists")
                _delete(db, entry.id)
            db.execute(
                "INSERT INTO build_history (id, created, completed, status, name, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.id,
                    entry.created,
                    entry.completed,
                    entry.status,
                    entry.name,
                    entry.record,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO pins (owner, digest) VALUES (?, ?)",
                [(_PIN_OWNER + entry.id, str(d)) for d in blobs],
            )
        self.expire()

    def entries(self) -> list[HistoryEntry]:
        """Every record, newest first."""
        rows = self.store.meta.query(
            "SELECT id, created, completed, status, name, record FROM build_history "
            "ORDER BY created DESC, id"
        )
        return [_entry(r) for r in rows]

    def resolve(self, ref: str) -> HistoryEntry:
        """A record by id, unique id prefix or `^N` (the Nth latest, `^0` the latest)."""
        entries = self.entries()
        if not entries:
            raise NotFound("no build records", hint="run a build first")
        if ref in ("", "^"):
            return entries[0]
        if ref.startswith("^"):
            try:
                n = int(ref[1:])
            except ValueError:
                raise InvalidArgument(f"invalid build record reference {ref!r}") from None
            if n < 0 or n >= len(entries):
                raise NotFound(f"no build record {ref}: there are {len(entries)}")
            return entries[n]
        exact = [e for e in entries if e.id == ref]
        if exact:
            return exact[0]
        matches = [e for e in entries if e.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InvalidArgument(f"build record reference {ref!r} is ambiguous")
        raise NotFound(f"no build record {ref!r}", hint="`bale history ls` lists them")

    def remove(self, ids: Iterable[str]) -> int:
        count = 0
        with self.store.meta.transaction() as db:
            for record_id in ids:
                count += _delete(db, record_id)
        return count

    def expire(self, now: float | None = None) -> list[str]:
        retention = Retention.load(self.store)
        with self.store.meta.transaction() as db:
            return expire(db, retention, time.time() if now is None else now)


def expire(db: sqlite3.Connection, retention: Retention, now: float) -> list[str]:
    """Drop records past the retention limits (inside the caller's transaction)."""
    rows = db.execute("SELECT id, created FROM build_history ORDER BY created DESC, id").fetchall()
    gone = []
    for n, (record_id, created) in enumerate(rows):
        too_many = retention.max_entries and n >= retention.max_entries
        too_old = retention.max_age and now - float(created) > retention.max_age
        if too_many or too_old:
            _delete(db, str(record_id))
            gone.append(str(record_id))
    return gone


def _delete(db: sqlite3.Connection, record_id: str) -> int:
    db.execute("DELETE FROM pins WHERE owner = ?", (_PIN_OWNER + record_id,))
    return db.execute("DELETE FROM build_history WHERE id = ?", (record_id,)).rowcount


def _entry(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        str(row[0]), float(row[1]), float(row[2]), str(row[3]), str(row[4]), str(row[5])
    )


@dataclass(frozen=True)
class LogBlob:
    digest: Digest
    size: int  # compressed bytes in the store
    raw_size: int  # bytes of the log itself


class LogWriter:
    """A step's log streamed into the content store, zstd-compressed as it comes."""

    def __init__(self, store: Store, lease: Lease) -> None:
        self._store = store
        self._lease = lease
        self._writer = store.content.writer(f"history-log-{os.getpid()}-{secrets.token_hex(8)}")
        self._compressor = zstandard.ZstdCompressor(level=3).compressobj()
        self.raw_size = 0

    def write(self, data: bytes) -> None:
        self.raw_size += len(data)
        out = self._compressor.compress(data)
        if out:
            self._writer.write(out)

    def finish(self) -> LogBlob:
        self._writer.write(self._compressor.flush())
        digest = self._writer.digest()
        size = self._writer.offset
        self._lease.add(digest)  # held until a record pins it
        try:
            self._writer.commit(size, digest)
        except AlreadyExists:
            pass  # the same log was kept before
        return LogBlob(digest, size, self.raw_size)

    def abort(self) -> None:
        self._writer.abort()


def read_log(store: Store, digest: Digest) -> Iterator[bytes]:
    """A kept log's bytes, in chunks (decompressed as read)."""
    with store.content.open(digest) as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)  # type: ignore[arg-type]
        try:
            while chunk := reader.read(1 << 20):
                yield chunk
        except zstandard.ZstdError as exc:
            raise InvalidArgument(f"log blob {digest} is damaged: {exc}") from None
