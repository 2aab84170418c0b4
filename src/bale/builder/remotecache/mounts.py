"""RUN --mount=type=cache contents as blobs: exported as a deterministic tar + zstd of the
mount's directory, restored before the build's first step when the local one is empty.
What a mount holds is a cache (apt, pip, go): restoring it never changes a step's key."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from bale.builder.remotecache.format import MOUNT_ID_ANNOTATION, MOUNT_MEDIA_TYPE
from bale.errors import InvalidArgument
from bale.oci.descriptor import Descriptor
from bale.store.local import Lease, Store
from bale.trees import remove_tree, walk

# A cache mount larger than this is not exported (stated in a warning).
MAX_MOUNT = 4 << 30


def mount_dir(store_root: Path, mount_id: str) -> Path:
    from bale.builder.executor.sandbox import cache_mount_dir

    return cache_mount_dir(store_root / "executor" / "cache", mount_id)


def export_mount(store: Store, mount_id: str, lease: Lease) -> Descriptor | None:
    """The mount's directory as a blob in the content store; None when it has none."""
    import zstandard

    root = mount_dir(store.root, mount_id)
    if not root.is_dir():
        return None
    total = sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in walk(root) for f in files)
    if total > MAX_MOUNT:
        raise InvalidArgument(
            f"cache mount {mount_id!r} holds {total} bytes, over the {MAX_MOUNT} bytes exported"
        )
    with tempfile.TemporaryFile() as spool:
        compressor = zstandard.ZstdCompressor(level=3, threads=-1)
        with (
            compressor.stream_writer(spool, closefd=False) as out,
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for dirpath, dirnames, filenames in walk(root):
                dirnames.sort()
                for name in ["", *sorted(filenames)] if dirpath == str(root) else sorted(filenames):
                    path = os.path.join(dirpath, name) if name else dirpath
                    info = tar.gettarinfo(path, arcname=os.path.relpath(path, root))
                    info.uname = info.gname = ""
                    info.mtime = int(info.mtime)
                    if info.isreg():
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                for name in dirnames:
                    path = os.path.join(dirpath, name)
                    info = tar.gettarinfo(path, arcname=os.path.relpath(path, root))
                    info.uname = info.gname = ""
                    tar.addfile(info)
        spool.seek(0)
        size = os.fstat(spool.fileno()).st_size
        digest, _ = store.ingest(spool, size=size, lease=lease)
    return Descriptor(
        MOUNT_MEDIA_TYPE, digest, size, annotations=((MOUNT_ID_ANNOTATION, mount_id),)
    )


def restore_mount(store: Store, mount_id: str, blob: Descriptor) -> bool:
    """Unpack an exported mount where the executor keeps it, unless it already has content;
    True when restored."""
    from bale.store.layers.apply import apply_layer

    root = mount_dir(store.root, mount_id)
    if root.is_dir() and any(root.iterdir()):
        return False
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        target = staging / "fs"
        target.mkdir()
        with store.content.open(blob.digest, blob.size) as stream:
            apply_layer(stream, target)
        if root.is_dir():
            root.rmdir()  # empty: checked above
        os.rename(target, root)
        return True
    finally:
        remove_tree(staging, ignore_errors=True)
