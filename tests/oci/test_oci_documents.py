"""Manifests, indexes, image configs and canonical JSON: exact bytes and round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bale.errors import InvalidArgument
from bale.oci import canonical, mediatype
from bale.oci.config import Healthcheck, HistoryEntry, ImageConfig, RuntimeConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import (
    ATTESTATION_REF,
    ATTESTATION_TYPE,
    Index,
    Manifest,
    descriptor_for,
    sniff_media_type,
)
from bale.oci.platform import Platform

CONFIG = Descriptor(mediatype.OCI_CONFIG, Digest.of(b"config"), 6)
LAYER = Descriptor(mediatype.OCI_LAYER_GZIP, Digest.of(b"layer"), 5)


def test_canonical_dumps_is_sorted_compact_utf8() -> None:
    assert canonical.dumps({"b": 1, "a": [1, {"d": "é", "c": None}]}) == (
        '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    )
    # Equal values give equal bytes whatever the insertion order.
    assert canonical.dumps({"x": 1, "y": 2}) == canonical.dumps({"y": 2, "x": 1})


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=4), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=5,
    )
)
def test_canonical_round_trip(value: dict[str, object]) -> None:
    data = canonical.dumps(value)
    assert canonical.loads_object(data) == value
    assert canonical.dumps(json.loads(data)) == data


@pytest.mark.parametrize("data", [b"", b"{", b"[1]", b'"s"', b"\xff", b"null"])
def test_loads_object_refuses_non_objects(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        canonical.loads_object(data, "thing")


def test_manifest_round_trip_and_bytes() -> None:
    m = Manifest(
        config=CONFIG,
        layers=(LAYER,),
        annotations=(("org.opencontainers.image.title", "t"),),
        subject=Descriptor(mediatype.OCI_MANIFEST, Digest.of(b"s"), 1),
    )
    data = m.encode()
    assert data == canonical.dumps(json.loads(data))
    assert Manifest.parse(data) == m
    obj = json.loads(data)
    assert obj["schemaVersion"] == 2 and obj["mediaType"] == mediatype.OCI_MANIFEST
    assert obj["layers"] == [
        {"digest": str(LAYER.digest), "mediaType": LAYER.media_type, "size": 5}
    ]
    assert m.children() == (CONFIG, LAYER)


def test_docker_manifest_is_read() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mediatype.DOCKER_MANIFEST,
        "config": {"mediaType": mediatype.DOCKER_CONFIG, "digest": str(CONFIG.digest), "size": 6},
        "layers": [
            {"mediaType": mediatype.DOCKER_LAYER_GZIP, "digest": str(LAYER.digest), "size": 5}
        ],
    }
    m = Manifest.parse(json.dumps(doc, indent=3).encode())
    assert m.media_type == mediatype.DOCKER_MANIFEST
    assert m.layers[0].media_type == mediatype.DOCKER_LAYER_GZIP
    assert mediatype.to_oci(m.media_type) == mediatype.OCI_MANIFEST


@pytest.mark.parametrize(
    "doc",
    [
        {"schemaVersion": 1, "config": {}, "layers": []},
        {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": []},
        {"schemaVersion": 2, "config": CONFIG.to_json(), "layers": {}},
        {
            "schemaVersion": 2,
            "config": {"mediaType": "x", "digest": "sha256:1", "size": 1},
            "layers": [],
        },
        {"schemaVersion": 2, "config": {**CONFIG.to_json(), "size": "6"}, "layers": []},
        {"schemaVersion": 2, "config": {**CONFIG.to_json(), "size": True}, "layers": []},
        {"schemaVersion": 2, "config": {**CONFIG.to_json(), "size": -1}, "layers": []},
        {"schemaVersion": 2, "config": CONFIG.to_json(), "layers": [], "annotations": ["x"]},
    ],
)
def test_bad_manifests_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        Manifest.parse(json.dumps(doc).encode())


def _manifest_desc(arch: str, **annotations: str) -> Descriptor:
    return Descriptor(
        mediatype.OCI_MANIFEST,
        Digest.of(arch.encode()),
        100,
        platform=Platform.parse(f"linux/{arch}"),
        annotations=tuple(sorted(annotations.items())),
    )


def test_index_round_trip_and_attestations() -> None:
    amd = _manifest_desc("amd64")
    arm = _manifest_desc("arm64")
    att = Descriptor(
        mediatype.OCI_MANIFEST,
        Digest.of(b"att"),
        50,
        platform=Platform("unknown", "unknown"),
        annotations=(
            (ATTESTATION_REF, str(amd.digest)),
            (ATTESTATION_TYPE, "attestation-manifest"),
        ),
    )
    index = Index(manifests=(amd, arm, att), annotations=(("a", "b"),))
    data = index.encode()
    assert Index.parse(data) == index
    assert index.image_manifests() == (amd, arm)
    assert index.attestations() == (att,)
    obj = json.loads(data)
    assert obj["manifests"][1]["platform"] == {"architecture": "arm64", "os": "linux"}
    assert sniff_media_type(data) == mediatype.OCI_INDEX


def test_docker_manifest_list_is_read_and_platforms_normalized() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mediatype.DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": mediatype.DOCKER_MANIFEST,
                "digest": str(Digest.of(b"a")),
                "size": 1,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            }
        ],
    }
    index = Index.parse(json.dumps(doc).encode())
    assert index.media_type == mediatype.DOCKER_MANIFEST_LIST
    assert index.manifests[0].platform == Platform("linux", "arm64")


def test_sniff_media_type() -> None:
    assert sniff_media_type(b'{"manifests":[]}') == mediatype.OCI_INDEX
    assert sniff_media_type(b'{"config":{},"layers":[]}') == mediatype.OCI_MANIFEST
    assert sniff_media_type(b'{"mediaType":"x"}') == "x"
    with pytest.raises(InvalidArgument):
        sniff_media_type(b'{"foo":1}')


def test_descriptor_json_round_trip() -> None:
    d = Descriptor(
        mediatype.OCI_MANIFEST,
        Digest.of(b"d"),
        1,
        platform=Platform.parse("linux/arm/v7"),
        annotations=(("k", "v"),),
        urls=("https://example.invalid/x",),
        artifact_type="application/x-art",
    )
    assert Descriptor.from_json(json.loads(canonical.dumps(d.to_json()))) == d
    assert d.with_annotations(z="1").annotation("z") == "1"
    assert d.without_annotations().annotations == ()
    assert descriptor_for(b"abc", mediatype.OCI_CONFIG).digest == Digest.of(b"abc")


def test_image_config_round_trip() -> None:
    cfg = ImageConfig(
        platform=Platform.parse("linux/arm/v7"),
        config=RuntimeConfig(
            user="1000:1000",
            exposed_ports=("80/tcp",),
            env=("PATH=/usr/bin", "A=b=c"),
            entrypoint=("/bin/sh", "-c"),
            cmd=("echo hi",),
            volumes=("/data",),
            working_dir="/app",
            labels=(("a", "1"), ("b", "2")),
            stop_signal="SIGTERM",
            healthcheck=Healthcheck(("CMD", "true"), interval_ns=30_000_000_000, retries=3),
            shell=("/bin/sh", "-c"),
            on_build=("RUN true",),
            args_escaped=True,
        ),
        diff_ids=(Digest.of(b"l1"), Digest.of(b"l2")),
        history=(
            HistoryEntry(created="2024-01-01T00:00:00Z", created_by="ADD x", comment="c"),
            HistoryEntry(created_by="ENV A=b", empty_layer=True, author="me"),
        ),
        created="2024-01-01T00:00:00Z",
        author="me",
    )
    data = cfg.encode()
    assert ImageConfig.parse(data) == cfg
    obj = json.loads(data)
    assert obj["architecture"] == "arm" and obj["variant"] == "v7"
    assert obj["rootfs"] == {"type": "layers", "diff_ids": [str(d) for d in cfg.diff_ids]}
    assert obj["config"]["Env"] == ["PATH=/usr/bin", "A=b=c"]
    assert obj["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert cfg.config.env_map() == {"PATH": "/usr/bin", "A": "b=c"}
    assert cfg.config.with_env("A", "z").env == ("PATH=/usr/bin", "A=z")


def test_image_config_null_fields_and_docker_shape() -> None:
    # Docker writes nulls for empty lists and capitalized runtime keys.
    data = json.dumps(
        {
            "architecture": "x86_64",
            "os": "linux",
            "config": {"Env": None, "Cmd": None, "Labels": None, "Entrypoint": ["/e"]},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": None,
        }
    ).encode()
    cfg = ImageConfig.parse(data)
    assert cfg.platform == Platform("linux", "amd64")
    assert cfg.config.cmd is None and cfg.config.entrypoint == ("/e",) and cfg.config.env == ()


@pytest.mark.parametrize(
    "patch",
    [
        {"config": {"Env": "PATH=/"}},
        {"config": {"Env": [1]}},
        {"config": {"Labels": ["a=b"]}},
        {"config": {"ExposedPorts": ["80"]}},
        {"config": ["x"]},
        {"rootfs": {"diff_ids": "x"}},
        {"rootfs": {"diff_ids": ["sha256:nothex"]}},
        {"history": {"a": 1}},
        {"architecture": 5},
    ],
)
def test_bad_image_configs_are_refused(patch: dict[str, object]) -> None:
    doc: dict[str, object] = {"architecture": "amd64", "os": "linux", **patch}
    with pytest.raises(InvalidArgument):
        ImageConfig.parse(json.dumps(doc).encode())


def test_layer_media_types() -> None:
    assert mediatype.layer_compression(mediatype.OCI_LAYER_GZIP) == "gzip"
    assert mediatype.layer_compression(mediatype.DOCKER_LAYER_GZIP) == "gzip"
    assert mediatype.layer_compression(mediatype.OCI_LAYER_ZSTD) == "zstd"
    assert mediatype.layer_compression(mediatype.OCI_LAYER) == ""
    assert mediatype.is_layer(mediatype.DOCKER_LAYER) and not mediatype.is_layer("application/x")
    assert mediatype.is_index(mediatype.DOCKER_MANIFEST_LIST) and mediatype.is_manifest(
        mediatype.DOCKER_MANIFEST
    )
