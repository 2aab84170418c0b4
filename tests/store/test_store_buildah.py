"""An OCI archive written by buildah loads into the store with both platforms."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from storehelp import assert_check_clean, bale, busybox_path, require_root, require_tool

pytestmark = [pytest.mark.root, pytest.mark.slow]

ARCHES = ("amd64", "arm64")


def _buildah_archive(tmp: Path) -> Path:
    exe = require_tool("buildah")
    require_root()
    base = [exe, "--storage-driver", "vfs", "--root", str(tmp / "s"), "--runroot", str(tmp / "r")]

    def run(*args: str) -> str:
        proc = subprocess.run([*base, *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"buildah {' '.join(args)}: {proc.stderr}"
        return proc.stdout.strip()

    run("manifest", "create", "bale-list")
    for arch in ARCHES:
        src = busybox_path(f"linux/{arch}")
        if src is None:
            pytest.skip(f"busybox-static for {arch} not fetched; run scripts/fetch-fixtures.sh")
        tree = tmp / arch / "bin"
        tree.mkdir(parents=True)
        (tree / "busybox").write_bytes(src.read_bytes())
        (tree / "busybox").chmod(0o755)
        (tree / "sh").symlink_to("busybox")
        container = run("from", "--arch", arch, "scratch")
        run("copy", container, str(tree), "/bin")
        run("config", "--os", "linux", "--arch", arch, container)
        image = run("commit", "--quiet", container, f"bale-img-{arch}")
        run("manifest", "add", "bale-list", image)
    archive = tmp / "buildah.oci.tar"
    run(
        "manifest",
        "push",
        "--all",
        "--format",
        "oci",
        "bale-list",
        f"oci-archive:{archive}:demo/bh:1",
    )
    return archive


def test_buildah_archive_loads_with_both_platforms(tmp_path: Path, root: Path) -> None:
    archive = _buildah_archive(tmp_path / "buildah")
    proc = bale(root, "load", "-i", str(archive))
    assert proc.stdout.strip() == "Loaded image: demo/bh:1"
    tree = bale(root, "images", "--tree").stdout.splitlines()
    assert tree[0].split()[0] == "IMAGE"
    assert tree[1].startswith("demo/bh:1 ")
    assert tree[2].startswith("├─ linux/amd64 ")
    assert tree[3].startswith("└─ linux/arm64 ")
    assert "not present" not in "\n".join(tree)
    row = json.loads(bale(root, "images", "--format", "json").stdout)
    assert row["MediaType"] == "application/vnd.oci.image.index.v1+json"
    assert row["Platforms"] == ["linux/amd64", "linux/arm64"]
    # Each platform resolves to its own config.
    for arch in ARCHES:
        doc = json.loads(
            bale(root, "image", "inspect", "--platform", f"linux/{arch}", "demo/bh:1").stdout
        )
        assert doc[0]["Architecture"] == arch
    assert_check_clean(root)
