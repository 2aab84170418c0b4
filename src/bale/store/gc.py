"""Mark-and-sweep garbage collection from image roots, pins and live leases. Build records
past their retention go first (their pins with them), so their logs are collected."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bale.errors import InvalidArgument, NotFound
from bale.oci.digest import Digest
from bale.store import history
from bale.store.local import Store


@dataclass(frozen=True)
class GcReport:
    removed: tuple[Digest, ...]
    bytes_freed: int
    ingest_bytes_freed: int


def collect(store: Store) -> GcReport:
    """Delete every blob not reachable from an image (of either mode), a pin or a live lease.

    Marking and sweeping happen inside one write transaction, so a writer that leases content
    (before committing it) either is seen by the mark or waits until the sweep is done.
    """
    removed: list[Digest] = []
    freed = 0
    retention = history.Retention.load(store)
    with store.meta.transaction() as db:
        history.expire(db, retention, time.time())
        roots = {str(r[0]) for r in db.execute("SELECT digest FROM images")}
        roots |= {str(r[0]) for r in db.execute("SELECT digest FROM pins")}
        roots |= store.meta.leased_digests(db, time.time())
        marked: set[str] = set()
        todo = list(roots)
        while todo:
            digest = todo.pop()
            if digest in marked:
                continue
            marked.add(digest)
            todo.extend(
                str(r[0]) for r in db.execute("SELECT child FROM refs WHERE parent = ?", (digest,))
            )
        for blob in store.content.walk():
            if str(blob.digest) in marked:
                continue
            try:
                freed += store.content.delete(blob.digest)
            except NotFound:
                continue
            store.meta.forget_blob(db, str(blob.digest))
            removed.append(blob.digest)
    ingest_freed = store.content.remove_stale_ingests()
    return GcReport(tuple(removed), freed, ingest_freed)


def human_size(size: int) -> str:
    """Docker's units: 1000-based, as `docker images` prints them."""
    if size < 0:
        raise InvalidArgument("negative size")
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"
