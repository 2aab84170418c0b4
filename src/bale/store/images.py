"""Image records: name → target descriptor, per store mode."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum

from bale.errors import InvalidArgument, NotFound
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest

DANGLING_PREFIX = "<none>@"


def image_id(target: Descriptor, config: Digest | None) -> str:
    """What docker calls an image's ID: for a plain manifest (what the classic store holds)
    its config's digest, for anything else the target's own digest."""
    from bale.oci import mediatype

    if config is not None and mediatype.is_manifest(target.media_type):
        return str(config)
    return str(target.digest)


class StoreMode(StrEnum):
    """containerd: indexes, many platforms, attestations. classic: one platform per image."""

    CONTAINERD = "containerd"
    CLASSIC = "classic"

    @classmethod
    def parse(cls, text: str) -> StoreMode:
        try:
            return cls(text)
        except ValueError:
            raise InvalidArgument(
                f"unknown store mode {text!r}", hint="use 'containerd' or 'classic'"
            ) from None


@dataclass(frozen=True)
class ImageRecord:
    name: str
    target: Descriptor
    created: float
    updated: float
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def dangling(self) -> bool:
        return self.name.startswith(DANGLING_PREFIX)


def _row_to_record(row: sqlite3.Row | tuple[object, ...]) -> ImageRecord:
    name, media_type, digest, size, created, updated, labels = row
    return ImageRecord(
        name=str(name),
        target=Descriptor(str(media_type), Digest.parse(str(digest)), int(str(size))),
        created=float(str(created)),
        updated=float(str(updated)),
        labels=tuple(sorted(json.loads(str(labels)).items())),
    )


_COLUMNS = "name, media_type, digest, size, created, updated, labels"


class ImageTable:
    """The images of one store mode; the other mode's rows are never touched."""

    def __init__(self, db: sqlite3.Connection, mode: StoreMode) -> None:
        self._db = db
        self.mode = mode

    def get(self, name: str) -> ImageRecord:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM images WHERE mode = ? AND name = ?", (self.mode.value, name)
        ).fetchone()
        if row is None:
            raise NotFound(f"image {name!r} not found")
        return _row_to_record(row)

    def find(self, name: str) -> ImageRecord | None:
        try:
            return self.get(name)
        except NotFound:
            return None

    def all(self, *, include_dangling: bool = True) -> list[ImageRecord]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM images WHERE mode = ? ORDER BY updated DESC, name",
            (self.mode.value,),
        ).fetchall()
        records = [_row_to_record(r) for r in rows]
        return [r for r in records if include_dangling or not r.dangling]

    def by_digest(self, digest: Digest) -> list[ImageRecord]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM images WHERE mode = ? AND digest = ?",
            (self.mode.value, str(digest)),
        ).fetchall()
        return [_row_to_record(r) for r in rows]

    def put(
        self,
        name: str,
        target: Descriptor,
        labels: dict[str, str] | None = None,
        *,
        keep_replaced: bool = True,
    ) -> None:
        """Point `name` at `target`. An image it replaces, left without a name, dangles
        unless `keep_replaced` is false (the new target supersedes it, as an import does)."""
        now = time.time()
        old = self.find(name)
        self._db.execute(
            "INSERT INTO images (mode, name, media_type, digest, size, created, updated, labels) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(mode, name) DO UPDATE SET "
            "media_type = excluded.media_type, digest = excluded.digest, size = excluded.size, "
            "updated = excluded.updated, labels = excluded.labels",
            (
                self.mode.value,
                name,
                target.media_type,
                str(target.digest),
                target.size,
                now,
                now,
                json.dumps(labels or {}, sort_keys=True),
            ),
        )
        # A named image makes a dangling record of the same content redundant (unless this
        # record is that dangling one: an unnamed load or build must keep its image).
        if not name.startswith(DANGLING_PREFIX):
            self._db.execute(
                "DELETE FROM images WHERE mode = ? AND name = ?",
                (self.mode.value, DANGLING_PREFIX + str(target.digest)),
            )
        if (
            keep_replaced
            and old is not None
            and old.target.digest != target.digest
            and not self.by_digest(old.target.digest)
        ):
            self._db.execute(
                "INSERT OR IGNORE INTO images "
                "(mode, name, media_type, digest, size, created, updated, labels) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, '{}')",
                (
                    self.mode.value,
                    DANGLING_PREFIX + str(old.target.digest),
                    old.target.media_type,
                    str(old.target.digest),
                    old.target.size,
                    old.created,
                    now,
                ),
            )

    def delete(self, name: str) -> ImageRecord:
        record = self.get(name)
        self._db.execute("DELETE FROM images WHERE mode = ? AND name = ?", (self.mode.value, name))
        return record
