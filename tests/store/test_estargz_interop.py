"""bale's eStargz blobs against stargz-snapshotter's own tools (ctr-remote, Debian package
stargz-snapshotter) on a private containerd."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from estargz_fixtures import tree
from estargz_reader import verify

from bale.store.estargz import TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION, convert
from support import start_containerd

pytestmark = [pytest.mark.root, pytest.mark.slow]

CHUNK = 65536


@pytest.fixture
def ctr(tmp_path: Path) -> Iterator[list[str]]:
    """`ctr-remote --address SOCK` against a containerd of its own."""
    exe = shutil.which("ctr-remote")
    if exe is None:
        pytest.skip("ctr-remote is not installed (apt-get install stargz-snapshotter)")
    service = start_containerd(tmp_path)
    try:
        yield [exe, *service.ctr[1:]]
    finally:
        service.stop()


def run(ctr: list[str], *args: str, stdin: bytes = b"") -> bytes:
    env = {**os.environ, "GOMAXPROCS": "1"}  # one estargz.Build worker: one writer, one TOC
    proc = subprocess.run(
        [*ctr, *args], input=stdin, capture_output=True, env=env, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def ours(data: bytes) -> tuple[bytes, str, bytes]:
    out = io.BytesIO()
    layer = convert(io.BytesIO(data), out, chunk_size=CHUNK)
    blob = out.getvalue()
    return blob, str(layer.toc_digest), verify(blob).toc_json


def ingest(ctr: list[str], blob: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    run(ctr, "content", "ingest", "--expected-digest", digest, "--expected-size", str(len(blob)),
        f"ingest-{digest[7:19]}", stdin=blob)  # fmt: skip
    return digest


def import_image(ctr: list[str], tmp: Path, name: str, layer: bytes, media_type: str) -> None:
    """An OCI archive with one layer, imported under `name`."""
    blobs: dict[str, bytes] = {}

    def add(data: bytes, mt: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": mt, "digest": f"sha256:{digest}", "size": len(data)}

    diff_id = hashlib.sha256(tar_of(layer) if media_type.endswith("gzip") else layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "config": {},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": add(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [add(layer, media_type)],
    }
    desc = add(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "manifests": [desc]}
    archive = tmp / f"{name.replace(':', '_')}.tar"
    with tarfile.open(archive, "w") as tf:
        files = {
            "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
            "index.json": json.dumps(index).encode(),
        }
        files.update({f"blobs/sha256/{d}": b for d, b in blobs.items()})
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    run(
        ctr,
        "images",
        "import",
        "--no-unpack",
        "--all-platforms",
        "--index-name",
        name,
        str(archive),
    )


def tar_of(blob: bytes) -> bytes:
    return gzip.decompress(blob)


def converted_layer(ctr: list[str], src: str, dst: str) -> tuple[dict[str, object], bytes]:
    """stargz-snapshotter's estargz.Build of `src`'s layer: its descriptor and blob."""
    run(
        ctr, "images", "convert", "--estargz", "--oci", "--estargz-chunk-size", str(CHUNK), src, dst
    )
    listing = run(ctr, "images", "ls").decode().splitlines()
    digest = next(line.split()[2] for line in listing if line.split()[0] == dst)
    manifest = json.loads(run(ctr, "content", "get", digest))
    if "manifests" in manifest:  # the index of the imported archive
        manifest = json.loads(run(ctr, "content", "get", manifest["manifests"][0]["digest"]))
    layer = manifest["layers"][0]
    return layer, run(ctr, "content", "get", layer["digest"])


def no_offsets(toc: bytes) -> str:
    return re.sub(r'\t*"offset": \d+,\n', "", toc.decode())


def test_ctr_remote_reads_our_footer_and_toc(ctr: list[str]) -> None:
    blob, toc_digest, toc_json = ours(tree())
    digest = ingest(ctr, blob)
    assert run(ctr, "images", "get-toc-digest", digest).decode().strip() == toc_digest
    # It re-marshals the TOC it parsed: the same bytes mean every field is as Go writes it.
    assert run(ctr, "images", "get-toc-digest", "--dump-toc", digest) == toc_json + b"\n"


def test_estargz_build_writes_the_toc_we_write(ctr: list[str], tmp_path: Path) -> None:
    data = tree()
    blob, _, toc_json = ours(data)
    import_image(ctr, tmp_path, "plain:1", data, "application/vnd.oci.image.layer.v1.tar")
    desc, go_blob = converted_layer(ctr, "plain:1", "plain:esgz")
    # Our reader checks Go's blob too, and Go's TOC differs from ours only in offsets.
    go = verify(go_blob, toc_digest=desc["annotations"][TOC_DIGEST_ANNOTATION])  # type: ignore[index]
    assert no_offsets(go.toc_json) == no_offsets(toc_json)
    assert desc["annotations"][UNCOMPRESSED_SIZE_ANNOTATION] == str(len(go.plain))  # type: ignore[index]
    ours_parsed = verify(blob)
    assert [(i.name, i.size, i.type) for i in go.tar] == [
        (i.name, i.size, i.type) for i in ours_parsed.tar
    ]


def test_estargz_build_reads_our_blob(ctr: list[str], tmp_path: Path) -> None:
    """Go's gzip and tar readers take our concatenated members and see the same entries."""
    blob, _, toc_json = ours(tree())
    import_image(ctr, tmp_path, "esgz:1", blob, "application/vnd.oci.image.layer.v1.tar+gzip")
    _, again = converted_layer(ctr, "esgz:1", "esgz:again")
    assert no_offsets(verify(again).toc_json) == no_offsets(toc_json)
