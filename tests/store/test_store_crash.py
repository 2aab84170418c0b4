"""Crash safety: writers killed at random points, and writers racing on the same blobs."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storehelp import assert_check_clean, bale

from bale.oci.digest import Digest
from bale.store.content import is_read_only
from bale.store.local import Store

WRITER = Path(__file__).with_name("crash_writer.py")
SIZE = 3 << 20


def _spawn(
    root: Path, ref: str, seed: int, size: int = SIZE, start: Path | None = None
) -> subprocess.Popen[str]:
    args = [sys.executable, str(WRITER), str(root), ref, str(seed), str(size)]
    if start is not None:
        args.append(str(start))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _expected(seed: int, size: int = SIZE) -> str:
    return str(Digest.of(random.Random(seed).randbytes(size)))


def _assert_visible_blobs_whole(root: Path) -> set[str]:
    """Every visible blob is complete: it hashes to its name and is read-only."""
    blobs = root / "content" / "blobs" / "sha256"
    names = set()
    if blobs.exists():
        for path in blobs.iterdir():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
            assert is_read_only(path), path
            names.add(f"sha256:{path.name}")
    return names


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_no_partial_blob(root: Path) -> None:
    rnd = random.Random(20261129)
    seeds = (1, 2, 3, 4, 5)
    killed = 0
    for i in range(30):
        seed = seeds[i % len(seeds)]
        proc = _spawn(root, f"crash-{seed}", seed)
        # From right after start-up to past the usual commit: kills land in every phase.
        time.sleep(rnd.uniform(0.0, 0.9))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.communicate()
        visible = _assert_visible_blobs_whole(root)
        assert visible <= {_expected(s) for s in seeds}
        assert_check_clean(root)
    assert killed > 0
    # Every interrupted ingest resumes and commits to exactly the expected blobs.
    for seed in seeds:
        proc = _spawn(root, f"crash-{seed}", seed)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() in ("created", "exists")
    assert _assert_visible_blobs_whole(root) == {_expected(s) for s in seeds}
    with Store(root) as store:
        assert store.content.ingests() == []
    assert_check_clean(root)


@pytest.mark.slow
def test_killed_ingests_are_invisible_and_gc_removes_them(root: Path) -> None:
    proc = _spawn(root, "left-behind", 99, size=32 << 20)
    with Store(root) as store:
        deadline = time.monotonic() + 60
        while not any(s.offset > 0 for s in store.content.ingests()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        [status] = store.content.ingests()
        assert status.ref == "left-behind" and 0 < status.offset < 32 << 20
        assert list(store.content.walk()) == []
    out = bale(root, "store", "gc").stdout
    assert "Total reclaimed space: 0B" not in out
    with Store(root) as store:
        assert store.content.ingests() == []
    assert_check_clean(root)


@pytest.mark.slow
def test_concurrent_writers_of_same_and_different_blobs(root: Path, tmp_path: Path) -> None:
    start = tmp_path / "go"
    Store(root).close()
    same = [_spawn(root, f"same-{i}", 7, 1 << 20, start) for i in range(4)]
    different = [_spawn(root, f"diff-{i}", 100 + i, 1 << 20, start) for i in range(4)]
    time.sleep(0.5)  # let them all reach the starting line
    start.touch()
    results = []
    for proc in [*same, *different]:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(out.strip())
    # One writer of the shared blob wins; the others learn it already exists.
    assert sorted(results[:4]) == ["created", "exists", "exists", "exists"]
    assert results[4:] == ["created"] * 4
    expected = {_expected(7, 1 << 20)} | {_expected(100 + i, 1 << 20) for i in range(4)}
    assert _assert_visible_blobs_whole(root) == expected
    with Store(root) as store:
        assert store.content.ingests() == []
    assert_check_clean(root)


# A writer that dies at a chosen point inside commit: the named hook exits the process.
_DIE_IN_COMMIT = """
import os, sys
from pathlib import Path
import bale.store.content as content
point = sys.argv[2]
if point == "after-link":
    content._fsync_dir = lambda path: os._exit(9)
else:
    def link(*args, **kwargs):
        os._exit(9)
    content.os.link = link
store = content.ContentStore(Path(sys.argv[1]))
writer = store.writer("same-ref")
writer.write(b"committed content")
writer.commit()
"""


@pytest.mark.parametrize("point", ["before-link", "after-link"])
def test_resuming_an_ingest_killed_inside_commit(root: Path, point: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _DIE_IN_COMMIT, str(root / "content"), point],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 9, proc.stderr
    with Store(root) as store:
        [status] = store.content.ingests()
        assert status.offset == len(b"committed content")
        published = [b.digest for b in store.content.walk()]
        assert published == ([Digest.of(b"committed content")] if point == "after-link" else [])
        # The next writer of the ref starts over: it must never append to a published blob.
        writer = store.content.writer("same-ref")
        assert writer.offset == 0
        writer.write(b"other content")
        assert writer.commit() == Digest.of(b"other content")
        for digest in published:
            store.content.verify(digest)
    assert_check_clean(root)


@pytest.mark.slow
def test_concurrent_imports_of_platforms_to_one_name_keep_them_all(
    root: Path, tmp_path: Path
) -> None:
    from storehelp import small_rootfs

    platforms = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le")
    tars = {}
    for p in platforms:
        tars[p] = tmp_path / f"{p.replace('/', '_')}.tar"
        tars[p].write_bytes(small_rootfs(p))
    bale(root, "images")
    for round_ in range(3):
        ref = f"demo/race:{round_}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bale",
                    "--root",
                    str(root),
                    "import",
                    "--platform",
                    p,
                    str(tars[p]),
                    ref,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in platforms
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        inspect = bale(root, "image", "inspect", "--platform", "linux/amd64", ref).stdout
        assert sorted(json.loads(inspect)[0]["Platforms"]) == sorted(platforms)
    assert_check_clean(root)
