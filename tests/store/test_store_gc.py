"""Garbage collection frees exactly the unreferenced blobs; leases protect work in progress."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storehelp import assert_check_clean, bale, import_platforms, small_rootfs, state

from bale.errors import InvalidArgument
from bale.oci.digest import Digest
from bale.store import gc
from bale.store.local import Store

HOLDER = Path(__file__).with_name("lease_holder.py")


def _reachable(root: Path, digest: str) -> set[str]:
    """Blobs under a manifest or index, read straight from the blob files."""
    blobs = root / "content" / "blobs" / "sha256"
    out = {digest}
    doc = json.loads((blobs / digest.split(":")[1]).read_bytes())
    children = doc.get("manifests") or [doc["config"], *doc["layers"]]
    for child in children:
        out |= _reachable(root, child["digest"]) if "manifests" in doc else {child["digest"]}
    return out


def _deleted(output: str) -> set[str]:
    return {line.split()[1] for line in output.splitlines() if line.startswith("deleted: ")}


def test_gc_frees_exactly_the_unreferenced_blobs(root: Path, tmp_path: Path) -> None:
    keep_a = import_platforms(
        root,
        tmp_path,
        "demo/a:1",
        {"linux/amd64": small_rootfs("a1"), "linux/arm64": small_rootfs("a2")},
    )[-1]
    keep_b = import_platforms(root, tmp_path, "demo/b:1", {"linux/amd64": small_rootfs("b")})[-1]
    # An image sharing its layer with a kept one, then unnamed without collecting.
    gone = import_platforms(root, tmp_path, "demo/gone:1", {"linux/s390x": small_rootfs("a1")})[-1]
    with Store(root) as store:
        with store.edit_images() as images:
            images.delete("docker.io/demo/gone:1")
        loose = {str(store.put_blob(f"loose {i}".encode())[0]) for i in range(3)}
    live = _reachable(root, keep_a) | _reachable(root, keep_b)
    before = state(root).blobs
    assert loose <= before and _reachable(root, gone) <= before
    assert _reachable(root, gone) & live  # the shared layer
    out = bale(root, "store", "gc").stdout
    assert _deleted(out) == before - live
    assert state(root).blobs == live
    assert out.strip().splitlines()[-1].startswith("Total reclaimed space: ")
    # Nothing left to free: a second run deletes nothing.
    assert _deleted(bale(root, "store", "gc").stdout) == set()
    assert_check_clean(root)


def test_rmi_frees_what_only_that_image_used(root: Path, tmp_path: Path) -> None:
    keep = import_platforms(root, tmp_path, "demo/keep:1", {"linux/amd64": small_rootfs("same")})[
        -1
    ]
    drop = import_platforms(root, tmp_path, "demo/drop:1", {"linux/arm64": small_rootfs("same")})[
        -1
    ]
    live = _reachable(root, keep)
    assert state(root).blobs == live | _reachable(root, drop)
    out = bale(root, "rmi", "demo/drop:1").stdout
    assert out.splitlines() == ["Untagged: demo/drop:1", f"Deleted: {drop}"]
    assert state(root).blobs == live
    assert_check_clean(root)


def test_prune_removes_dangling_images_and_their_content(root: Path, tmp_path: Path) -> None:
    first = import_platforms(root, tmp_path, "demo/p:1", {"linux/amd64": small_rootfs("one")})[-1]
    bale(root, "tag", "demo/p:1", "demo/p:old")
    bale(root, "rmi", "demo/p:old")  # by name: only the name goes, content stays named
    with Store(root) as store:
        assert store.resolve("demo/p:1").digest == Digest.parse(first)
        # Re-pointing the name leaves the old index dangling (docker's <none>:<none>).
        second = store.put_document(
            b'{"schemaVersion":2,"manifests":[]}', "application/vnd.oci.image.index.v1+json"
        )
        store.set_image("docker.io/demo/p:1", second)
    listed = bale(root, "images", "-a", "--format", "json").stdout.splitlines()
    assert {json.loads(x)["Tag"] for x in listed} == {"1", "<none>"}
    out = bale(root, "image", "prune", "-f").stdout
    assert f"deleted: {first}" in out
    assert first not in state(root).blobs
    assert str(second.digest) in state(root).blobs
    listed = bale(root, "images", "-a", "--format", "json").stdout.splitlines()
    assert [json.loads(x)["Digest"] for x in listed] == [str(second.digest)]


@pytest.mark.slow
def test_lease_protects_content_from_a_concurrent_gc(root: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    Store(root).close()
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), str(root), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        digest, created = line.split()
        assert created == "True"
        out = bale(root, "store", "gc").stdout
        assert digest not in _deleted(out)
        assert digest in state(root).blobs
        with Store(root) as store:
            assert [s.ref for s in store.content.ingests()] == ["in-progress"]
        go.touch()
        rest, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert rest.strip() == "done"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The lease is over and nothing names the blob: the next collection frees it, and the
    # ingest no writer holds any longer.
    out = bale(root, "store", "gc").stdout
    assert _deleted(out) == {digest}
    assert state(root).blobs == frozenset()
    with Store(root) as store:
        assert store.content.ingests() == []


def test_expired_lease_no_longer_protects(root: Path) -> None:
    with Store(root) as store, store.lease(ttl=0.05) as lease:
        digest, _ = store.put_blob(b"short-lived", lease)
        time.sleep(0.1)
        report = gc.collect(store)
        assert report.removed == (digest,)


def test_failed_lease_block_rolls_back_only_what_it_created(root: Path) -> None:
    with Store(root) as store:
        old, _ = store.put_blob(b"was here before")
        with pytest.raises(InvalidArgument), store.lease() as lease:
            store.put_blob(b"was here before", lease)
            new, created = store.put_blob(b"new in this block", lease)
            assert created
            raise InvalidArgument("the operation failed")
        assert store.content.exists(old)
        assert not store.content.exists(new)
