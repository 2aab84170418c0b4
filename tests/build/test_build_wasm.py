"""WebAssembly images: `--platform wasi/wasm` (or wasip1/wasm) FROM scratch with COPY, loaded
into containerd; a RUN for such a platform is refused before any step."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from buildhelp import build, events

# The smallest valid module: magic and version.
MODULE = b"\0asm\x01\0\0\0"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "app.wasm").write_bytes(MODULE)
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY app.wasm /app.wasm\nENTRYPOINT ["/app.wasm"]\n'
    )
    return ctx


@pytest.mark.root
@pytest.mark.parametrize("platform", ["wasi/wasm", "wasip1/wasm"])
def test_wasm_image_loads_into_containerd(
    context: Path, tmp_path: Path, containerd: list[str], platform: str
) -> None:
    archive = tmp_path / "wasm.tar"
    name = f"docker.io/bale-test/wasm-{platform.split('/')[0]}:1"
    build(
        tmp_path / "root",
        context,
        "-t",
        name,
        "-o",
        f"type=oci,dest={archive}",
        "--annotation",
        "manifest-descriptor:module.wasm.image/variant=compat",
        platforms=(platform,),
    )
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        top = json.load(
            tar.extractfile(  # type: ignore[arg-type]
                "blobs/sha256/" + index["manifests"][0]["digest"][7:]
            )
        )
    (desc,) = [m for m in top["manifests"] if m["platform"]["os"] != "unknown"]
    assert f"{desc['platform']['os']}/{desc['platform']['architecture']}" == platform
    assert desc["annotations"]["module.wasm.image/variant"] == "compat"
    subprocess.run(
        [*containerd, "images", "import", "--platform", platform, str(archive)],
        check=True,
        capture_output=True,
    )
    listed = subprocess.run(
        [*containerd, "images", "ls"], check=True, capture_output=True, text=True
    ).stdout
    row = next(line for line in listed.splitlines() if line.startswith(name))
    assert platform in row, listed
    subprocess.run([*containerd, "images", "rm", name], check=True, capture_output=True)


def test_run_for_wasm_is_refused_before_any_step(context: Path, tmp_path: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY app.wasm /app.wasm\nRUN /app.wasm\n")
    proc = build(tmp_path / "root", context, platforms=("wasi/wasm",), check=False)
    assert proc.returncode == 1
    assert "RUN is not supported for platform wasi/wasm" in proc.stderr
    assert "Dockerfile:3" in proc.stderr
    assert not events(proc.stderr)
