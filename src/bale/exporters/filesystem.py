"""`-o type=local` and `type=tar`: each platform's filesystem as a directory or a tar (with
several platforms, one `linux_amd64`-style subdirectory each), and the attestations asked
for beside it as BuildKit writes them: `provenance.json`, `sbom.spdx.json`, one in-toto
statement each whose subjects are the platform's regular files and their sha256."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

from bale.exporters.archive_writer import atomic_output
from bale.exporters.base import ExportResponse
from bale.exporters.image import ImageOutcome, PlatformImage
from bale.store.local import Store
from bale.trees import remove_tree


def write_local(store: Store, image: ImageOutcome, dest: Path, split: bool | None = None) -> None:
    """`split` (platform-split): one directory per platform; by default only when there are
    several. Unsplit, the platforms' files are merged, a later platform's file winning."""
    from bale.store.layers.apply import apply_layer  # loaded only for this output

    multi = len(image.platforms) > 1 if split is None else split
    dest.mkdir(parents=True, exist_ok=True)
    for result in image.platforms:
        target = dest / result.platform.dirname if multi else dest
        if target.exists() and multi:
            remove_tree(target)
        target.mkdir(parents=True, exist_ok=True)
        for layer in result.layers:
            with store.content.open(layer.descriptor.digest, layer.descriptor.size) as blob:
                apply_layer(blob, target, expect_diff_id=layer.diff_id, devices=False)
        if result.attestations:
            # Merged platforms name theirs apart: provenance.linux_amd64.json.
            suffix = "" if multi or len(image.platforms) == 1 else result.platform.dirname
            _write_attestations(result, target, suffix)


def _write_attestations(result: PlatformImage, target: Path, suffix: str) -> None:
    subjects = _file_subjects(target)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = float(epoch) if epoch.isdigit() else time.time()
    for file in result.attestations:
        name = file.path
        if suffix:
            base, dot, ext = name.partition(".")
            name = f"{base}.{suffix}{dot}{ext}"
        statement: dict[str, Any] = {**file.statement, "subject": subjects}
        path = target / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(statement, out, indent=2)
        os.utime(path, (when, when))


def _file_subjects(root: Path) -> list[dict[str, Any]]:
    """Every regular file below `root` with its sha256, in the order BuildKit's local
    exporter walks its output: entries by name, a directory's contents right after it."""
    subjects = []
    # A stack of (directory's relative path, its remaining entries, sorted by name).
    stack = [("", iter(sorted(os.scandir(root), key=lambda e: e.name)))]
    while stack:
        rel, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        name = f"{rel}/{entry.name}" if rel else entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            stack.append((name, iter(sorted(os.scandir(entry.path), key=lambda e: e.name))))
        elif stat.S_ISREG(mode):
            digest = hashlib.sha256()
            with open(entry.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            subjects.append({"name": name, "digest": {"sha256": digest.hexdigest()}})
    return subjects


class LocalExporter:
    def __init__(self, dest: Path, split: bool | None = None) -> None:
        self.dest = dest
        self.split = split

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        write_local(store, image, self.dest, self.split)
        return ExportResponse()


class TarExporter:
    def __init__(self, dest: Path | None, stdout: BinaryIO, split: bool | None = None) -> None:
        self.dest = dest
        self.stdout = stdout
        self.split = split

    def export(self, store: Store, image: ImageOutcome) -> ExportResponse:
        with tempfile.TemporaryDirectory(prefix="bale-tar-") as tmp:
            root = Path(tmp) / "root"
            write_local(store, image, root, self.split)
            with (
                atomic_output(self.dest, self.stdout) as out,
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for entry in sorted(os.listdir(root)):
                    tar.add(root / entry, arcname=entry)
        return ExportResponse()
