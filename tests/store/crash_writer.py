"""Child process for the crash tests: writes one blob slowly through the ingest protocol.

usage: crash_writer.py ROOT REF SEED SIZE [START_FILE]
Prints "created" or "exists" on success. Resumes an ingest an earlier (killed) writer left.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from bale.errors import AlreadyExists
from bale.oci.digest import Digest
from bale.store.local import Store

CHUNK = 64 << 10


def main() -> int:
    root, ref, seed, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    start = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    data = random.Random(seed).randbytes(size)
    expected = Digest.of(data)
    with Store(root) as store:
        if start is not None:
            while not start.exists():
                time.sleep(0.005)
        try:
            writer = store.content.writer(ref, expected)
        except AlreadyExists:
            print("exists", flush=True)
            return 0
        offset = writer.offset
        while offset < size:
            writer.write(data[offset : offset + CHUNK])
            offset += CHUNK
            time.sleep(0.002)
        try:
            writer.commit(size, expected)
        except AlreadyExists:
            print("exists", flush=True)
            return 0
    print("created", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
