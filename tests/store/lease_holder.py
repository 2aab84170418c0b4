"""Child process for the lease tests: holds a lease over written content until told to stop.

usage: lease_holder.py ROOT GO_FILE
Under one lease: commits a blob and leaves a second ingest open, prints both, then waits for
GO_FILE and ends the lease normally (no rollback).
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from bale.store.local import Store


def main() -> int:
    root, go = Path(sys.argv[1]), Path(sys.argv[2])
    with Store(root) as store, store.lease() as lease:
        digest, created = store.ingest(io.BytesIO(b"leased content " * 1000), lease=lease)
        writer = store.content.writer("in-progress")
        writer.write(b"partial " * 1000)
        print(f"{digest} {created}", flush=True)
        while not go.exists():
            time.sleep(0.01)
        writer.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
