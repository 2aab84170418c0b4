"""`bale store check` finds what it promises to find (other tests rely on it as an oracle)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from storehelp import assert_check_clean, bale, import_platforms, small_rootfs


def _blob(root: Path, digest: str) -> Path:
    return root / "content" / "blobs" / "sha256" / digest.split(":")[1]


def _manifest(root: Path, index: str) -> dict:  # type: ignore[type-arg]
    doc = json.loads(_blob(root, index).read_bytes())
    return json.loads(_blob(root, doc["manifests"][0]["digest"]).read_bytes())


def test_check_reports_altered_missing_and_writable_blobs(root: Path, tmp_path: Path) -> None:
    index = import_platforms(root, tmp_path, "demo/c:1", {"linux/amd64": small_rootfs("c")})[-1]
    assert_check_clean(root)
    manifest = _manifest(root, index)
    layer = _blob(root, manifest["layers"][0]["digest"])
    config = _blob(root, manifest["config"]["digest"])

    os.chmod(layer, 0o644)
    out = bale(root, "store", "check", check=False)
    assert out.returncode == 1
    assert f"{manifest['layers'][0]['digest']}: blob is writable" in out.stdout

    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    os.chmod(layer, 0o444)
    out = bale(root, "store", "check", check=False)
    assert out.returncode == 1 and "digest mismatch" in out.stdout

    config.unlink()
    out = bale(root, "store", "check", check=False)
    assert out.returncode == 1
    assert "docker.io/demo/c:1: missing application/vnd.oci.image.config.v1+json" in out.stdout
    assert out.stdout.strip().endswith("problem(s) found")


def test_save_refuses_to_export_an_altered_blob(root: Path, tmp_path: Path) -> None:
    index = import_platforms(root, tmp_path, "demo/s:1", {"linux/amd64": small_rootfs("s")})[-1]
    manifest = _manifest(root, index)
    layer = _blob(root, manifest["layers"][0]["digest"])
    os.chmod(layer, 0o644)
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    for args in ((), ("--format", "docker", "--platform", "linux/amd64")):
        out = tmp_path / "out.tar"
        proc = bale(root, "save", *args, "-o", str(out), "demo/s:1", check=False)
        assert proc.returncode == 1, args
        assert proc.stderr.startswith("ERROR: ") and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert not out.exists() and list(tmp_path.glob(".out.tar.*")) == []
