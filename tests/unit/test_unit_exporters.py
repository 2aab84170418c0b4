"""Exporters without root, from a real build result: image assembly, annotations,
oci-mediatypes=false, attestations beside local outputs, OCI and Docker archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from unithelp import Built, Project

from bale.errors import InvalidArgument
from bale.exporters.archives import DockerExporter, OciExporter
from bale.exporters.attest import AttestOptions
from bale.exporters.export_options import parse_export_options
from bale.exporters.filesystem import LocalExporter, TarExporter
from bale.exporters.image import ImageOutcome, assemble
from bale.exporters.outputs import parse_output
from bale.exporters.provenance import ProvenanceOptions
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index, Manifest

TWO = ("linux/amd64", "linux/arm64")
DOCKERFILE = "FROM scratch\nCOPY a.txt /a.txt\nRUN write /made yes\nLABEL k=v\nENV E=1\n"
NO_ATTEST = AttestOptions(provenance=None)


@pytest.fixture
def built(project: Project) -> Built:
    project.write("a.txt", "A")
    return project.build(DOCKERFILE, TWO)


def _doc(project: Project, desc: Descriptor) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(project.store.content.read_bytes(desc.digest))
    return data


def _assemble(
    project: Project,
    built: Built,
    attrs: dict[str, str] | None = None,
    attest: AttestOptions | None = None,
) -> ImageOutcome:
    fmt = parse_export_options("image", attrs or {}).format
    with project.store.lease() as lease:
        return assemble(project.store, built.result, lease, attest, fmt=fmt)


def test_assemble_writes_an_index_of_one_manifest_per_platform(
    project: Project, built: Built
) -> None:
    image = _assemble(project, built)
    assert image.target.media_type == mediatype.OCI_INDEX
    index = Index.parse(project.store.content.read_bytes(image.target.digest))
    assert [str(m.platform) for m in index.manifests] == list(TWO)
    assert len(image.manifests) == 2 and len(set(image.config_digests)) == 2


def test_each_manifest_lists_the_platforms_layers_and_config(
    project: Project, built: Built
) -> None:
    image = _assemble(project, built)
    for i, desc in enumerate(image.manifests):
        manifest = Manifest.parse(project.store.content.read_bytes(desc.digest))
        assert manifest.media_type == mediatype.OCI_MANIFEST
        assert manifest.config.media_type == mediatype.OCI_CONFIG
        assert [layer.digest for layer in manifest.layers] == [
            layer.descriptor.digest for layer in built.layers(i)
        ]
        config = _doc(project, manifest.config)
        assert config["rootfs"]["diff_ids"] == [str(x.diff_id) for x in built.layers(i)]
        assert config["architecture"] == TWO[i].split("/")[1]


def test_the_config_keeps_the_dockerfiles_settings(project: Project, built: Built) -> None:
    image = _assemble(project, built)
    manifest = Manifest.parse(project.store.content.read_bytes(image.manifests[0].digest))
    config = _doc(project, manifest.config)
    assert config["config"]["Labels"] == {"k": "v"}
    assert "E=1" in config["config"]["Env"]


def test_history_marks_the_steps_that_added_no_layer(project: Project, built: Built) -> None:
    image = _assemble(project, built)
    manifest = Manifest.parse(project.store.content.read_bytes(image.manifests[0].digest))
    history = _doc(project, manifest.config)["history"]
    empty = [bool(h.get("empty_layer")) for h in history]
    assert empty.count(False) == len(manifest.layers) == 2
    assert [h["created_by"].split(" ")[0] for h in history if not h.get("empty_layer")] == [
        "COPY",
        "RUN",
    ]


def test_source_date_epoch_sets_every_time(project: Project) -> None:
    project.write("a.txt", "A")
    built = project.build(DOCKERFILE, build_args={"SOURCE_DATE_EPOCH": "1000"})
    image = _assemble(project, built)
    manifest = Manifest.parse(project.store.content.read_bytes(image.manifests[0].digest))
    config = _doc(project, manifest.config)
    assert config["created"] == "1970-01-01T00:16:40Z"
    assert {h["created"] for h in config["history"]} == {"1970-01-01T00:16:40Z"}


def test_assembling_twice_gives_the_same_image(project: Project) -> None:
    project.write("a.txt", "A")
    built = project.build(DOCKERFILE, TWO, build_args={"SOURCE_DATE_EPOCH": "5"})
    assert _assemble(project, built).target == _assemble(project, built).target


def test_oci_mediatypes_false_writes_docker_types(project: Project, built: Built) -> None:
    image = _assemble(project, built, {"oci-mediatypes": "false"})
    assert image.target.media_type == mediatype.DOCKER_MANIFEST_LIST
    manifest = Manifest.parse(project.store.content.read_bytes(image.manifests[0].digest))
    assert manifest.media_type == mediatype.DOCKER_MANIFEST
    assert manifest.config.media_type == mediatype.DOCKER_CONFIG
    assert {x.media_type for x in manifest.layers} == {mediatype.DOCKER_LAYER_GZIP}


def test_docker_types_keep_the_layer_bytes(project: Project, built: Built) -> None:
    oci = _assemble(project, built)
    docker = _assemble(project, built, {"oci-mediatypes": "false"})
    layers = [
        [x.digest for x in Manifest.parse(project.store.content.read_bytes(d.digest)).layers]
        for d in (oci.manifests[0], docker.manifests[0])
    ]
    assert layers[0] == layers[1]


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("annotation.org.example.k", "manifest"),
        ("annotation-manifest.org.example.k", "manifest"),
        ("annotation-index.org.example.k", "index"),
        ("annotation-manifest-descriptor.org.example.k", "descriptor"),
    ],
)
def test_annotations_land_where_buildkit_puts_them(
    project: Project, built: Built, key: str, where: str
) -> None:
    image = _assemble(project, built, {key: "v"})
    index = _doc(project, image.target)
    manifest = _doc(project, image.manifests[0])
    found = {
        "index": index.get("annotations", {}).get("org.example.k"),
        "manifest": manifest.get("annotations", {}).get("org.example.k"),
        "descriptor": index["manifests"][0].get("annotations", {}).get("org.example.k"),
    }
    assert {k for k, v in found.items() if v == "v"} == {where}


def test_a_platform_annotation_goes_on_that_platform_only(project: Project, built: Built) -> None:
    image = _assemble(project, built, {"annotation-manifest[linux/arm64].only": "arm"})
    amd, arm = (_doc(project, d).get("annotations", {}) for d in image.manifests)
    assert "only" not in amd and arm["only"] == "arm"


def test_attestations_attach_one_manifest_per_platform(project: Project, built: Built) -> None:
    image = _assemble(project, built, attest=AttestOptions(provenance=ProvenanceOptions()))
    index = _doc(project, image.target)
    kinds = [m.get("annotations", {}).get("vnd.docker.reference.type") for m in index["manifests"]]
    assert kinds.count("attestation-manifest") == 2
    refs = {
        m["annotations"]["vnd.docker.reference.digest"]
        for m in index["manifests"]
        if m.get("annotations", {}).get("vnd.docker.reference.type")
    }
    assert refs == {str(d.digest) for d in image.manifests}


def test_without_attestations_the_index_has_only_the_images(project: Project, built: Built) -> None:
    image = _assemble(project, built, attest=None)
    assert len(_doc(project, image.target)["manifests"]) == 2


def test_a_local_output_writes_each_platforms_files(
    project: Project, built: Built, tmp_path: Path
) -> None:
    image = _assemble(project, built)
    LocalExporter(tmp_path / "out").export(project.store, image)
    for platform in ("linux_amd64", "linux_arm64"):
        assert (tmp_path / "out" / platform / "a.txt").read_text() == "A"
        assert (tmp_path / "out" / platform / "made").read_text() == "yes"


def test_a_local_output_of_one_platform_is_not_split(project: Project, tmp_path: Path) -> None:
    project.write("a.txt", "A")
    built = project.build(DOCKERFILE)
    LocalExporter(tmp_path / "out").export(project.store, _assemble(project, built))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "made"]


def test_platform_split_false_merges_platforms(
    project: Project, built: Built, tmp_path: Path
) -> None:
    LocalExporter(tmp_path / "out", split=False).export(project.store, _assemble(project, built))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "made"]


def test_provenance_is_written_beside_a_local_output(
    project: Project, built: Built, tmp_path: Path
) -> None:
    image = _assemble(project, built, attest=AttestOptions(provenance=ProvenanceOptions()))
    LocalExporter(tmp_path / "out").export(project.store, image)
    statement = json.loads((tmp_path / "out" / "linux_amd64" / "provenance.json").read_text())
    assert statement["predicateType"].startswith("https://slsa.dev/provenance/")
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    import hashlib

    assert subjects["a.txt"] == hashlib.sha256(b"A").hexdigest()
    assert set(subjects) == {"a.txt", "made"}


def test_the_default_provenance_goes_into_images_only(
    project: Project, built: Built, tmp_path: Path
) -> None:
    image = _assemble(project, built, attest=AttestOptions())
    LocalExporter(tmp_path / "out").export(project.store, image)
    assert not list((tmp_path / "out").rglob("provenance*.json"))


def test_a_tar_output_holds_each_platforms_files(
    project: Project, built: Built, tmp_path: Path
) -> None:
    dest = tmp_path / "out.tar"
    TarExporter(dest, io.BytesIO()).export(project.store, _assemble(project, built))
    with tarfile.open(dest) as tar:
        names = {n.rstrip("/") for n in tar.getnames()}
    assert {"linux_amd64/a.txt", "linux_arm64/made"} <= names


def _members(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar:
            if info.isfile():
                f = tar.extractfile(info)
                assert f is not None
                out[info.name] = f.read()
    return out


def test_an_oci_archive_is_a_layout_with_every_blob(project: Project, built: Built) -> None:
    image = _assemble(project, built)
    out = io.BytesIO()
    OciExporter(None, ["example.com/app:1"], True, out).export(project.store, image)
    members = _members(out.getvalue())
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(members["index.json"])
    top = index["manifests"][0]
    assert top["digest"] == str(image.target.digest)
    assert top["annotations"]["io.containerd.image.name"] == "example.com/app:1"
    for layer in built.layers(0) + built.layers(1):
        assert f"blobs/sha256/{layer.descriptor.digest.hex}" in members


def test_an_oci_directory_output(project: Project, built: Built, tmp_path: Path) -> None:
    image = _assemble(project, built)
    OciExporter(tmp_path / "layout", [], False, io.BytesIO()).export(project.store, image)
    assert (tmp_path / "layout" / "index.json").is_file()
    assert (tmp_path / "layout" / "blobs" / "sha256" / image.target.digest.hex).is_file()


def test_a_docker_archive_names_its_tags(project: Project, tmp_path: Path) -> None:
    project.write("a.txt", "A")
    image = _assemble(project, project.build(DOCKERFILE), {"oci-mediatypes": "false"})
    out = io.BytesIO()
    DockerExporter(None, ["example.com/app:1"], out).export(project.store, image)
    members = _members(out.getvalue())
    manifest = json.loads(members["manifest.json"])
    assert manifest[0]["RepoTags"] == ["example.com/app:1"]
    assert len(manifest[0]["Layers"]) == 2


def test_a_docker_archive_refuses_several_platforms(project: Project, built: Built) -> None:
    image = _assemble(project, built)
    with pytest.raises(InvalidArgument, match="manifest lists"):
        DockerExporter(None, [], io.BytesIO()).export(project.store, image)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=nope", "unsupported output type"),
        ("type=local", "needs dest"),
        ("type=image,bogus=1", "unknown output attribute"),
        ("type=image,push=maybe", "invalid value"),
        ("type=image,compression=lzma", "compression"),
        ("type=image,compression=gzip,compression-level=42", "compression-level"),
        ("type=image,compression=estargz,oci-mediatypes=false", "estargz"),
        ("type=image,compression=zstd,oci-mediatypes=false", "zstd"),
        ("type=image,oci-artifact=true,oci-mediatypes=false", "conflicts"),
        ("type=local,dest=out,annotation.k=v", "annotations"),
        ("dest=out", "has no type"),
    ],
)
def test_bad_outputs_are_refused_before_the_build(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_output(text)


@pytest.mark.parametrize(
    ("text", "kind", "dest"),
    [("out", "local", "out"), ("-", "tar", "-"), ("type=oci,dest=x.tar", "oci", "x.tar")],
)
def test_output_shorthands(text: str, kind: str, dest: str) -> None:
    spec = parse_output(text)
    assert (spec.type, spec.dest) == (kind, dest)


def test_docker_outputs_default_to_docker_media_types() -> None:
    assert parse_export_options("docker", {}).format.oci_media_types is False
    assert parse_export_options("oci", {}).format.oci_media_types is True
