"""A store locked by another process past the busy timeout is a clear, retryable error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bale.errors import Unavailable
from bale.store.metadata import Metadata


def test_a_held_write_lock_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    meta = Metadata(tmp_path / "metadata.db")
    meta._db.execute("PRAGMA busy_timeout=100")  # the real timeout is 30 s
    other = sqlite3.connect(tmp_path / "metadata.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(Unavailable, match="busy"):
        meta.set_setting("mode", "classic")
    other.execute("ROLLBACK")
    meta.set_setting("mode", "classic")  # once released, the same write goes through
    assert meta.get_setting("mode", "") == "classic"
