"""`-o` exporter attributes as BuildKit's exporters take them: each one's effect in what the
build writes, and a bad key or value refused before any step runs."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from buildhelp import TESTS, bale, build, events

from bale.oci.digest import Digest
from bale.store.layers.chain import chain_ids
from bale.store.local import Store

sys.path.insert(0, str(TESTS / "store"))
from estargz_reader import verify

EPOCH = 1_600_000_000
ONE = ("linux/amd64",)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ctx = tmp_path_factory.mktemp("export-options") / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY app.txt /app.txt\n")
    (ctx / "app.txt").write_text("exported\n" * 100)
    return ctx


def _layout(dest: Path) -> tuple[dict[str, Any], Any]:
    """(index.json, reader of a blob's JSON) of an OCI layout directory."""

    def blob(desc: dict[str, Any]) -> Any:
        return json.loads((dest / "blobs" / "sha256" / desc["digest"][7:]).read_bytes())

    return json.loads((dest / "index.json").read_text()), blob


def _manifests(dest: Path) -> list[dict[str, Any]]:
    index, blob = _layout(dest)
    top = blob(index["manifests"][0])
    if "manifests" not in top:
        return [top]
    return [
        blob(m)
        for m in top["manifests"]
        if m.get("annotations", {}).get("vnd.docker.reference.type") != "attestation-manifest"
    ]


def _oci(
    store_root: Path,
    context: Path,
    tmp_path: Path,
    attrs: str,
    *args: str,
    platforms: tuple[str, ...] = ONE,
) -> Path:
    dest = tmp_path / "layout"
    build(
        store_root,
        context,
        "-o",
        f"type=oci,dest={dest},tar=false{attrs}",
        *args,
        platforms=platforms,
    )
    return dest


def _blob(dest: Path, desc: dict[str, Any]) -> bytes:
    return (dest / "blobs" / "sha256" / desc["digest"][7:]).read_bytes()


@pytest.mark.root
@pytest.mark.parametrize(
    ("attrs", "media_type", "magic"),
    [
        ("", "application/vnd.oci.image.layer.v1.tar+gzip", b"\x1f\x8b"),
        (",compression=zstd", "application/vnd.oci.image.layer.v1.tar+zstd", b"\x28\xb5\x2f\xfd"),
        (",compression=uncompressed", "application/vnd.oci.image.layer.v1.tar", b""),
    ],
)
@pytest.mark.root
def test_compression_of_new_layers(
    store_root: Path, context: Path, tmp_path: Path, attrs: str, media_type: str, magic: bytes
) -> None:
    dest = _oci(store_root, context, tmp_path, attrs)
    (manifest,) = _manifests(dest)
    base, new = manifest["layers"]
    assert base["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"  # kept
    assert new["mediaType"] == media_type
    data = _blob(dest, new)
    assert data.startswith(magic)
    if not magic:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert tar.getnames() == ["app.txt"]


@pytest.mark.root
def test_compression_level_changes_the_gzip_bytes(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    fast = _manifests(_oci(store_root, context, tmp_path / "a", ",compression-level=0"))[0]
    best = _manifests(_oci(store_root, context, tmp_path / "b", ",compression-level=9"))[0]
    # Level 0 stores the bytes: larger than level 9's, with the same diff id.
    assert fast["layers"][1]["size"] > best["layers"][1]["size"]
    assert fast["config"]["digest"] == best["config"]["digest"]


@pytest.mark.root
def test_zstd_level_is_recorded_in_provenance(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = _oci(store_root, context, tmp_path, ",compression=zstd,compression-level=7")
    index, blob = _layout(dest)
    top = blob(index["manifests"][0])
    (att,) = [
        m
        for m in top["manifests"]
        if m.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest"
    ]
    (layer,) = blob(att)["layers"]
    statement = json.loads(_blob(dest, layer))
    recorded = statement["predicate"]["buildDefinition"]["internalParameters"]
    assert recorded["layerCompression"]["type"] == "zstd"
    assert recorded["layerCompression"]["level"] == 7


@pytest.mark.root
def test_force_compression_recompresses_base_layers(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = _oci(store_root, context, tmp_path, ",compression=zstd,force-compression=true")
    (manifest,) = _manifests(dest)
    assert [x["mediaType"] for x in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+zstd"
    ] * 2


@pytest.mark.root
def test_estargz_layers_pass_the_spec_reader(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = _oci(store_root, context, tmp_path, ",compression=estargz,force-compression=true")
    (manifest,) = _manifests(dest)
    for layer in manifest["layers"]:
        annotations = layer["annotations"]
        data = _blob(dest, layer)
        parsed = verify(data, toc_digest=annotations["containerd.io/snapshot/stargz/toc.digest"])
        assert int(annotations["io.containers.estargz.uncompressed-size"]) == len(parsed.plain)
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.mark.root
def test_oci_mediatypes_false_writes_docker_media_types(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = _oci(
        store_root, context, tmp_path, ",oci-mediatypes=false", "--provenance=false",
        platforms=TWO_PLATFORMS,
    )  # fmt: skip
    index, blob = _layout(dest)
    top = blob(index["manifests"][0])
    assert top["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    for manifest in _manifests(dest):
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
        assert {x["mediaType"] for x in manifest["layers"]} == {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        }


@pytest.mark.root
def test_oci_mediatypes_false_with_attestations_turns_oci(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "layout"
    proc = build(store_root, context, "-o", f"type=oci,dest={dest},tar=false,oci-mediatypes=false",
                 platforms=ONE)  # fmt: skip
    warnings = [
        base64.b64decode(w["short"]).decode()
        for line in proc.stderr.splitlines() if line.startswith("{")
        for w in json.loads(line).get("warnings", [])
    ]  # fmt: skip
    assert "WARNING: forcibly turning on oci-mediatype mode for attestations" in warnings
    (manifest,) = _manifests(dest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


TWO_PLATFORMS = ("linux/amd64", "linux/arm64")


@pytest.mark.root
def test_annotations_land_where_buildkit_puts_them(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    attrs = (
        ",annotation.m=all,annotation[linux/arm64].m=arm"
        ",annotation-index.i=idx,annotation-manifest-descriptor.md=desc"
        ",annotation-index-descriptor.id=top"
    )
    dest = _oci(store_root, context, tmp_path, attrs, platforms=TWO_PLATFORMS)
    index, blob = _layout(dest)
    assert index["manifests"][0]["annotations"]["id"] == "top"
    top = blob(index["manifests"][0])
    assert top["annotations"] == {"i": "idx"}
    by_arch = {}
    for desc in top["manifests"]:
        if "platform" in desc and desc["platform"]["os"] == "linux":
            assert desc["annotations"]["md"] == "desc"
            by_arch[desc["platform"]["architecture"]] = blob(desc)["annotations"]["m"]
    assert by_arch == {"amd64": "all", "arm64": "arm"}


@pytest.mark.root
def test_annotation_flag_is_placed_like_exporter_keys(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = _oci(
        store_root,
        context,
        tmp_path,
        "",
        "--annotation",
        "index,manifest:k=v",
        "--annotation",
        "manifest[linux/arm64]:only=arm",
        platforms=TWO_PLATFORMS,
    )
    index, blob = _layout(dest)
    top = blob(index["manifests"][0])
    assert top["annotations"] == {"k": "v"}
    found = {}
    for desc in top["manifests"]:
        if desc.get("platform", {}).get("os") == "linux":
            found[desc["platform"]["architecture"]] = blob(desc).get("annotations")
    assert found == {"amd64": {"k": "v"}, "arm64": {"k": "v", "only": "arm"}}


@pytest.mark.root
def test_rewrite_timestamp_clamps_file_times(
    store_root: Path, context: Path, tmp_path: Path
) -> None:
    dest = _oci(
        store_root,
        context,
        tmp_path,
        ",rewrite-timestamp=true,compression=uncompressed",
        "--build-arg",
        f"SOURCE_DATE_EPOCH={EPOCH}",
    )
    (manifest,) = _manifests(dest)
    with tarfile.open(fileobj=io.BytesIO(_blob(dest, manifest["layers"][1]))) as tar:
        assert [m.mtime for m in tar.getmembers()] == [EPOCH]
    # Without SOURCE_DATE_EPOCH there is nothing to rewrite to: refused before any step.
    proc = build(
        store_root,
        context,
        "-o",
        f"type=oci,dest={tmp_path / 'x'},rewrite-timestamp=true",
        platforms=ONE,
        check=False,
    )
    assert proc.returncode != 0 and "needs SOURCE_DATE_EPOCH" in proc.stderr
    assert not events(proc.stderr)


def _names(root: Path) -> list[str]:
    with sqlite3.connect(root / "metadata.db") as db:
        return [str(r[0]) for r in db.execute("SELECT name FROM images")]


@pytest.mark.root
def test_name_canonical_and_dangling_name_prefix(store_root: Path, context: Path) -> None:
    build(
        store_root,
        context,
        "-t",
        "bale-test/canon:1",
        "-o",
        "type=image,name-canonical=true",
        "--iidfile",
        str(context.parent / "iid"),
        platforms=ONE,
    )
    names = _names(store_root)
    assert "docker.io/bale-test/canon:1" in names
    assert any(n.startswith("docker.io/bale-test/canon@sha256:") for n in names)
    build(store_root, context, "-o", "type=image,dangling-name-prefix=scratchpad", platforms=ONE)
    assert any(n.startswith("scratchpad@sha256:") for n in _names(store_root))


@pytest.mark.root
def test_unpack_leaves_the_image_unpacked(store_root: Path, context: Path) -> None:
    meta = context.parent / "unpack-meta.json"
    build(
        store_root,
        context,
        "-t",
        "bale-test/unpacked:1",
        "-o",
        "type=image,unpack=true",
        "--metadata-file",
        str(meta),
        platforms=ONE,
    )
    digest = Digest.parse(json.loads(meta.read_text())["containerimage.config.digest"])
    with Store(store_root) as store:
        config = json.loads(store.content.read_bytes(digest))
    chain = chain_ids([Digest.parse(d) for d in config["rootfs"]["diff_ids"]])
    with sqlite3.connect(store_root / "snapshots" / "metadata.db") as db:
        committed = {
            str(r[0]) for r in db.execute("SELECT key FROM snapshots WHERE kind = 'committed'")
        }
    assert str(chain[-1]) in committed


@pytest.mark.root
def test_platform_split(store_root: Path, context: Path, tmp_path: Path) -> None:
    one = tmp_path / "one"
    build(store_root, context, "-o", f"type=local,dest={one},platform-split=true", platforms=ONE)
    assert (one / "linux_amd64" / "app.txt").is_file()
    merged = tmp_path / "merged"
    build(
        store_root,
        context,
        "-o",
        f"type=local,dest={merged},platform-split=false",
        platforms=TWO_PLATFORMS,
    )
    assert (merged / "app.txt").is_file() and not (merged / "linux_amd64").exists()


@pytest.mark.root
def test_push_by_digest_and_store_false(store_root: Path, context: Path, registry: str) -> None:
    name = f"{registry}/bale-test/bydigest"
    meta = context.parent / "push-meta.json"
    build(
        store_root,
        context,
        "-o",
        f"type=image,name={name}:v1,push=true,push-by-digest=true,store=false",
        "--metadata-file",
        str(meta),
        platforms=ONE,
    )
    digest = json.loads(meta.read_text())["containerimage.digest"]
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/bale-test/bydigest/tags/list") as r:
            tags = json.loads(r.read()).get("tags") or []
    except urllib.error.HTTPError as exc:  # a repository without tags has no tag list
        assert exc.code == 404
        tags = []
    assert "v1" not in tags
    req = urllib.request.Request(
        f"http://{registry}/v2/bale-test/bydigest/manifests/{digest}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json,"
            "application/vnd.oci.image.manifest.v1+json"
        },
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    assert not any("bydigest" in n for n in _names(store_root))  # store=false kept nothing


@pytest.mark.parametrize(
    ("output", "named"),
    [
        ("type=oci,dest=x.tar,compression=bogus", "compression"),
        ("type=oci,dest=x.tar,made-up=1", "made-up"),
        ("type=image,compression-level=99", "compression-level"),
        ("type=oci,dest=x.tar,compression=zstd,compression-level=x", "compression-level"),
        ("type=image,force-compression=maybe", "force-compression"),
        ("type=image,oci-mediatypes=nah", "oci-mediatypes"),
        ("type=image,oci-artifact=2", "oci-artifact"),
        ("type=image,name-canonical=yes", "name-canonical"),
        ("type=image,push-by-digest=x", "push-by-digest"),
        ("type=image,unpack=x", "unpack"),
        ("type=image,store=x", "store"),
        ("type=local,dest=out,platform-split=x", "platform-split"),
        ("type=image,rewrite-timestamp=x", "rewrite-timestamp"),
        ("type=image,annotation-bogus.k=v", "annotation-bogus.k"),
        ("type=image,annotation[linux/s390x].k=v", "linux/s390x"),
        ("type=local,dest=out,compression=zstd", "compression"),
        ("type=image,dangling-name-prefix=x,tar=false", "tar"),
        ("type=oci,dest=x,oci-mediatypes=false,oci-artifact=true", "oci-artifact"),
    ],
)
def test_bad_output_attribute_is_refused_before_any_step(
    tmp_path: Path, output: str, named: str
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    proc = build(
        tmp_path / "root", ctx, "-o", output, platforms=("linux/amd64", "linux/arm64"), check=False
    )
    assert proc.returncode == 1, proc.stderr
    error = next(line for line in proc.stderr.splitlines() if line.startswith("ERROR"))
    assert named in error, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not events(proc.stderr), "a step ran before the output was checked"


def _get(url: str, accept: str = "") -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req) as r:
        return bytes(r.read())


@pytest.mark.root
def test_estargz_image_through_a_registry(
    store_root: Path, context: Path, tmp_path: Path, registry: str
) -> None:
    name = f"{registry}/bale-test/estargz:1"
    attrs = "compression=estargz,force-compression=true"
    dest = tmp_path / "layout"
    build(store_root, context, "-o", f"type=oci,dest={dest},tar=false,{attrs}",
          "-o", f"type=registry,name={name},{attrs}", platforms=ONE)  # fmt: skip
    index, _ = _layout(dest)
    local = (dest / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes()
    accept = "application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json"
    remote = _get(f"http://{registry}/v2/bale-test/estargz/manifests/1", accept)
    assert remote == local  # the registry holds the very index the layout has
    (manifest,) = _manifests(dest)
    for layer in manifest["layers"]:
        data = _get(f"http://{registry}/v2/bale-test/estargz/blobs/{layer['digest']}")
        assert data == _blob(dest, layer)
        verify(data, toc_digest=layer["annotations"]["containerd.io/snapshot/stargz/toc.digest"])
    # Pulled back into a fresh store: the same index, layers and annotations.
    fresh = tmp_path / "fresh"
    bale(fresh, "pull", "--platform", "linux/amd64", name)
    with Store(fresh) as store:
        target = store.resolve(name)
        assert str(target.digest) == index["manifests"][0]["digest"]
        (desc,) = store.index(target).image_manifests()
        pulled = store.manifest(desc)
        assert [x.to_json() for x in pulled.layers] == manifest["layers"]
