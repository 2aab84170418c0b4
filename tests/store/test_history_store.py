"""Build records: retention by count and age, their logs kept by GC while they live, the
references `bale history` takes, and the archive round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bale.errors import InvalidArgument, NotFound
from bale.store import gc
from bale.store.history import History, HistoryEntry, LogWriter, read_log
from bale.store.history_archive import export_records, import_records
from bale.store.local import Store


def _record(store: Store, record_id: str, created: float, log: bytes) -> HistoryEntry:
    with store.lease() as lease:
        writer = LogWriter(store, lease)
        writer.write(log)
        blob = writer.finish()
        record = {
            "id": record_id,
            "name": "ctx",
            "status": "completed",
            "created": created,
            "completed": created + 1,
            "request": {},
            "warnings": [],
            "results": {},
            "error": None,
            "steps": [
                {
                    "n": 1,
                    "vertex": "sha256:" + "0" * 64,
                    "name": "[linux/amd64 1/1] RUN make",
                    "platform": "linux/amd64",
                    "status": "executed",
                    "started": created,
                    "completed": created + 1,
                    "inputs": [],
                    "log": {"digest": str(blob.digest), "size": blob.size},
                }
            ],
        }
        entry = HistoryEntry(
            record_id, created, created + 1, "completed", "ctx", json.dumps(record)
        )
        History(store).put(entry, [blob.digest])
    return entry


def _log(store: Store, entry: HistoryEntry) -> bytes:
    from bale.oci.digest import Digest

    digest = Digest.parse(json.loads(entry.record)["steps"][0]["log"]["digest"])
    return b"".join(read_log(store, digest))


def test_retention_drops_oldest_and_gc_frees_only_their_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("BALE_HISTORY_MAX_ENTRIES", "2")
    monkeypatch.setenv("BALE_HISTORY_MAX_AGE", "1h")
    now = time.time()
    with Store(tmp_path / "root") as store:
        ancient = _record(store, "ancient", now - 7200, b"too old\n")  # dropped on put
        a = _record(store, "aaaa1", now - 30, b"first\n" * 1000)
        b = _record(store, "aaaa2", now - 20, b"second\n")
        assert [e.id for e in History(store).entries()] == ["aaaa2", "aaaa1"]
        gc.collect(store)
        # The dropped record's log went; the living records' logs are GC roots.
        assert _log(store, a) == b"first\n" * 1000 and _log(store, b) == b"second\n"
        with pytest.raises(NotFound):
            _log(store, ancient)
        c = _record(store, "bbbb", now - 10, b"third\n")
        assert [e.id for e in History(store).entries()] == ["bbbb", "aaaa2"]
        gc.collect(store)
        with pytest.raises(NotFound):
            _log(store, a)
        assert _log(store, c) == b"third\n"

        # References: exact id, unique prefix, ^N.
        history = History(store)
        assert history.resolve("^0").id == "bbbb" and history.resolve("^1").id == "aaaa2"
        assert history.resolve("bb").id == "bbbb"
        with pytest.raises(NotFound):
            history.resolve("^2")
        with pytest.raises(InvalidArgument):
            history.resolve("^x")

        # Export, remove, import: the record and its whole log come back.
        out = io.BytesIO()
        export_records(store, [history.resolve("bbbb")], out)
        history.remove(["bbbb"])
        gc.collect(store)
        archive = tmp_path / "rec.dockerbuild"
        archive.write_bytes(out.getvalue())
        assert import_records(store, archive) == ["bbbb"]
        assert _log(store, history.resolve("bbbb")) == b"third\n"


def test_import_refuses_a_damaged_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dockerbuild"
    bad.write_bytes(b"\x1f\x8bnot really gzip")
    with Store(tmp_path / "root") as store:
        with pytest.raises(InvalidArgument, match="not a build"):
            import_records(store, bad)
        # A record of the wrong shape is refused, and what its archive brought is removed.
        record = {"id": "x1", "name": 5, "status": "completed", "steps": []}
        out = io.BytesIO()
        export_records(
            store, [HistoryEntry("x1", 1.0, 2.0, "completed", "x", json.dumps(record))], out
        )
        bad.write_bytes(out.getvalue())
        with pytest.raises(InvalidArgument, match="build record: name"):
            import_records(store, bad)
        assert list(store.content.walk()) == [] and History(store).entries() == []
