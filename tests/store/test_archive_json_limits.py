"""`bale load` of archives whose JSON documents are bombs: one clear error, no traceback,
nothing loaded. (The document parsers themselves are covered in tests/oci.)"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from storehelp import bale, state

BOMB = b"[" * 100_000 + b"]" * 100_000


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _load_fails(root: Path, tmp_path: Path, members: dict[str, bytes]) -> str:
    before = state(root)
    path = tmp_path / "bomb.tar"
    path.write_bytes(_tar(members))
    proc = bale(root, "load", "-i", str(path), check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2, proc.stderr
    assert state(root) == before
    return proc.stderr


@pytest.mark.parametrize("name", ["index.json", "manifest.json"])
def test_a_nesting_bomb_as_the_archive_index(tmp_path: Path, name: str) -> None:
    layout = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'} if name == "index.json" else {}
    err = _load_fails(tmp_path / "root", tmp_path, {**layout, name: BOMB})
    assert err.startswith(f"ERROR: {name}: malformed JSON in ") or err.startswith(
        f"ERROR: malformed JSON in {name}: "
    ), err
    assert "nested deeper than 64 levels" in err


def test_a_nesting_bomb_as_a_manifest_inside_the_archive(tmp_path: Path) -> None:
    digest = hashlib.sha256(BOMB).hexdigest()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{digest}",
                "size": len(BOMB),
            }
        ],
    }
    members = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        f"blobs/sha256/{digest}": BOMB,
        "index.json": json.dumps(index).encode(),
    }
    err = _load_fails(tmp_path / "root", tmp_path, members)
    assert err.startswith(
        f"ERROR: archive blob sha256:{digest}: malformed JSON in manifest: nested deeper than 64"
    ), err
