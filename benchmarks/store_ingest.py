"""Ingest throughput of the content store against `sha256sum` of the same file.

    BALE_BENCH_SIZE_MB=1024 .venv/bin/python benchmarks/store_ingest.py

Writes a file of random bytes, then times (best of BALE_BENCH_RUNS, default 3, page cache warm):
  - sha256sum FILE                                  (reads and hashes)
  - ContentStore.writer → write → commit(size, expected)   (reads, hashes, writes, fsyncs,
    verifies and publishes the blob; the store is removed between runs)
  - Store.ingest(stream, expected=…), the path `bale load` takes
and prints MB/s for each and the ratio bale / sha256sum (target >= 0.8).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bale.oci.digest import Digest
from bale.store.content import ContentStore

MB = 1_000_000
CHUNK = 8 << 20


def make_file(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def time_sha256sum(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.split()[0]


def time_ingest(path: Path, store_dir: Path, expected: Digest, size: int) -> float:
    shutil.rmtree(store_dir, ignore_errors=True)
    start = time.perf_counter()
    content = ContentStore(store_dir)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        writer = content.writer(f"bench-{time.monotonic_ns()}")
        while n := f.readinto(buf):
            writer.write(view[:n])
        digest = writer.commit(size, expected)
    elapsed = time.perf_counter() - start
    assert digest == expected
    return elapsed


def time_store_ingest(path: Path, store_dir: Path, expected: Digest, size: int) -> float:
    """The path `bale load` takes: Store.ingest of a stream, digest verified at commit."""
    from bale.store.local import Store

    shutil.rmtree(store_dir, ignore_errors=True)
    start = time.perf_counter()
    with Store(store_dir) as store, open(path, "rb") as f:
        digest, created = store.ingest(f, expected=expected, size=size)
    elapsed = time.perf_counter() - start
    assert digest == expected and created
    return elapsed


def main() -> int:
    size = int(os.environ.get("BALE_BENCH_SIZE_MB", "1024")) << 20
    runs = int(os.environ.get("BALE_BENCH_RUNS", "3"))
    if shutil.which("sha256sum") is None:
        print("sha256sum is not installed", file=sys.stderr)
        return 1
    base = Path(os.environ.get("BALE_BENCH_DIR") or tempfile.mkdtemp(prefix="bale-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        data = base / "input.bin"
        make_file(data, size)
        _, hexdigest = time_sha256sum(data)  # warms the page cache
        expected = Digest("sha256", hexdigest)
        peer = min(time_sha256sum(data)[0] for _ in range(runs))
        ours = min(time_ingest(data, base / "store", expected, size) for _ in range(runs))
        stream = min(time_store_ingest(data, base / "store", expected, size) for _ in range(runs))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    peer_rate = size / MB / peer
    our_rate = size / MB / ours
    ratio = our_rate / peer_rate
    print(f"size:                  {size / MB:.0f} MB")
    print(f"sha256sum:             {peer_rate:8.1f} MB/s  ({peer:.2f} s)")
    print(f"bale ingest + commit:  {our_rate:8.1f} MB/s  ({ours:.2f} s)")
    print(f"bale Store.ingest:     {size / MB / stream:8.1f} MB/s  ({stream:.2f} s)")
    verdict = "met" if ratio >= 0.8 else "NOT met"
    print(f"ratio bale/sha256sum:  {ratio:.2f}  (target >= 0.80: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
