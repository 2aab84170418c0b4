"""The content store's ingest → commit protocol, at the library level."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from bale.errors import AlreadyExists, DigestMismatch, InvalidArgument, NotFound, Unavailable
from bale.oci.digest import Digest
from bale.store.content import ContentStore, is_read_only
from bale.store.metadata import SCHEMA_VERSION, Metadata


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def test_commit_publishes_a_read_only_verified_blob(content: ContentStore) -> None:
    data = os.urandom(3 << 20)
    with content.writer("r1") as w:
        w.write(data[:1000])
        w.write(memoryview(data)[1000:])
        assert not content.exists(Digest.of(data))  # invisible while ingesting
        digest = w.commit(len(data), Digest.of(data))
    assert digest == Digest.of(data)
    path = content.blob_path(digest)
    assert path == content.root / "blobs" / "sha256" / digest.hex
    assert path.read_bytes() == data and is_read_only(path)
    assert content.info(digest).size == len(data)
    assert content.ingests() == []
    assert content.read_bytes(digest, len(data)) == data


def test_commit_refuses_wrong_digest_or_size_and_publishes_nothing(content: ContentStore) -> None:
    w = content.writer("bad-digest")
    w.write(b"hello")
    with pytest.raises(DigestMismatch):
        w.commit(5, Digest.of(b"other"))
    w = content.writer("bad-size")
    w.write(b"hello")
    with pytest.raises(DigestMismatch):
        w.commit(4, Digest.of(b"hello"))
    assert list(content.walk()) == [] and content.ingests() == []


def test_already_exists_is_distinguishable(content: ContentStore) -> None:
    digest, created = content.put(b"x")
    assert created
    assert content.put(b"x") == (digest, False)
    with pytest.raises(AlreadyExists):
        content.writer("again", Digest.of(b"x"))
    w = content.writer("late")
    w.write(b"x")
    with pytest.raises(AlreadyExists):
        w.commit(1, digest)
    assert content.ingests() == []
    assert content.ingest_stream(io.BytesIO(b"x"), "s", digest) == (digest, False)


def test_ingest_resumes_and_aborts(content: ContentStore) -> None:
    w = content.writer("resumable")
    w.write(b"first half, ")
    w.close()
    [status] = content.ingests()
    assert (status.ref, status.offset) == ("resumable", 12)
    w = content.writer("resumable")
    assert w.offset == 12
    w.write(b"second half")
    digest = w.commit()
    assert content.read_bytes(digest) == b"first half, second half"
    w = content.writer("dropped")
    w.write(b"junk")
    w.close()
    content.abort("dropped")
    assert content.ingests() == []
    with pytest.raises(NotFound):
        content.abort("dropped")


def test_one_writer_per_ref(content: ContentStore) -> None:
    w = content.writer("busy")
    with pytest.raises(Unavailable):
        content.writer("busy")
    # A held ingest survives stale-ingest removal; a released one does not.
    w.write(b"data")
    assert content.remove_stale_ingests() == 0
    w.close()
    assert content.remove_stale_ingests() == 4
    with pytest.raises(InvalidArgument):
        content.writer("")


def test_exception_in_writer_block_aborts(content: ContentStore) -> None:
    with pytest.raises(RuntimeError), content.writer("boom") as w:
        w.write(b"partial")
        raise RuntimeError("writer failed")
    assert content.ingests() == []


def test_verifying_reader_catches_altered_blobs(content: ContentStore) -> None:
    digest, _ = content.put(b"original content")
    path = content.blob_path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"altered content!")
    with pytest.raises(DigestMismatch):
        content.verify(digest)
    with pytest.raises(DigestMismatch):
        content.read_bytes(digest)
    with pytest.raises(DigestMismatch), content.open(digest, size=3) as reader:
        reader.read()
    with pytest.raises(NotFound):
        content.open(Digest.of(b"absent"))


def test_delete(content: ContentStore) -> None:
    digest, _ = content.put(b"12345")
    assert content.delete(digest) == 5
    assert not content.exists(digest)
    with pytest.raises(NotFound):
        content.delete(digest)


def test_sha512_expected_digest(content: ContentStore) -> None:
    w = content.writer("sha512")
    w.write(b"abc")
    digest = w.commit(3, Digest.of(b"abc", "sha512"))
    assert digest == Digest.of(b"abc", "sha512")
    assert content.read_bytes(digest) == b"abc"


def test_metadata_schema_is_versioned(tmp_path: Path) -> None:
    db = tmp_path / "metadata.db"
    Metadata(db).close()
    meta = Metadata(db)  # reopening migrates nothing and keeps the version
    assert meta.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert meta.query("PRAGMA journal_mode")[0][0] == "wal"
    meta.query(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    meta.close()
    from bale.errors import FailedPrecondition

    with pytest.raises(FailedPrecondition):
        Metadata(db)
