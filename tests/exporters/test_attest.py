"""Attestations from a build result, into a store: the provenance a result gives (bases for
the platform they were resolved for, URLs and named contexts with digests, secret and SSH
ids, steps, the layer compressor), the SBOMs of the image and its extra targets, and the
attestation manifest in both shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sbomhelp import F, compress, debian_layer, site_packages, tar_bytes
from slsa_schema import validate_slsa_v02, validate_slsa_v1

from bale.builder.result import (
    BuildResult,
    ContextInput,
    Download,
    MountUse,
    PlatformResult,
    PlatformUsage,
    ScanTarget,
    Step,
)
from bale.builder.state import LayerRef
from bale.exporters import intoto
from bale.exporters.attest import AttestOptions, SbomOptions, attach
from bale.exporters.attestation_manifest import ARTIFACT_TYPE, read_statements
from bale.exporters.provenance import ProvenanceOptions
from bale.frontends.graph import Material
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import ATTESTATION_MANIFEST, ATTESTATION_REF, ATTESTATION_TYPE
from bale.oci.platform import Platform
from bale.store.local import Store

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
GOLANG = Digest.of(b"golang index")
DEBIAN = Digest.of(b"debian index")
LAYOUT = Digest.of(b"layout index")
TOOL = Digest.of(b"tool.tgz bytes")
DOCKERFILE = b"FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM debian:12\n"


def layer(store: Store, members: list[F]) -> LayerRef:
    tar = tar_bytes(members)
    blob = compress(tar, "gzip")
    digest, _ = store.put_blob(blob)
    return LayerRef(Descriptor(mediatype.OCI_LAYER_GZIP, digest, len(blob)), Digest.of(tar))


def result(store: Store, epoch: int | None = None) -> tuple[BuildResult, list[Descriptor]]:
    image = layer(store, debian_layer())
    app = layer(store, site_packages())
    build_stage = layer(
        store,
        [
            F(
                "usr/lib/node_modules/left-pad/package.json",
                b'{"name": "left-pad", "version": "1.3.0"}',
            )
        ],
    )
    usage = PlatformUsage(
        downloads=(Download("https://user:pw@downloads.example.com/tool.tgz", TOOL),),
        mounts=(MountUse("secret", "npmrc", required=True), MountUse("ssh", "default")),
        steps=(
            Step("sha256:aa", "image", '{"ref":"debian:12"}'),
            Step("sha256:bb", "exec", '{"argv":["make"]}', ("sha256:aa",)),
        ),
        network=True,
    )
    platforms = []
    manifests = []
    for platform in (AMD64, ARM64):
        platforms.append(
            PlatformResult(
                platform,
                ImageConfig(platform=platform),
                (image, app),
                (),
                (
                    Material("golang:1.22", str(GOLANG), AMD64),
                    Material("debian:12", str(DEBIAN), platform),
                    Material("bale-build-context@" + str(LAYOUT), str(LAYOUT), platform),
                ),
                usage,
                (ScanTarget("build", (build_stage,)),),
                scan_context=True,
            )
        )
        data = json.dumps({"platform": str(platform)}).encode()
        digest, _ = store.put_blob(data)
        manifests.append(Descriptor(mediatype.OCI_MANIFEST, digest, len(data)))
    contexts = (
        ContextInput("vendor", "./third_party"),
        ContextInput(
            "base", "oci-layout:///srv/layouts/base:1", "bale-build-context@" + str(LAYOUT)
        ),
        ContextInput("unused", "docker-image://alpine:3.19", "alpine:3.19"),
    )
    return (
        BuildResult(tuple(platforms), epoch, 1_700_000_000.25, 1_700_000_042.5, contexts),
        manifests,
    )


def options(tmp_path: Path, provenance: str, **changes: object) -> AttestOptions:
    context = tmp_path / "ctx"
    site = "lib/python3.11/site-packages"
    for top, name, version in (("venv", "vendored", "0.1"), ("ignored", "hidden", "9")):
        dist = context / top / site / f"{name}-{version}.dist-info"
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (context / ".dockerignore").write_text("ignored\n")
    base = AttestOptions(
        provenance=ProvenanceOptions.parse(provenance + ",builder-id=https://ci.example/1"),
        sbom=SbomOptions(),
        names=("registry.example.com/team/app:1",),
        build_args=(("API_TOKEN", "s3cr3t"),),
        labels=(("owner", "l4b3l"),),
        dockerfile_source=DOCKERFILE,
        frontend_attrs=(("target", "release"),),
        context=context,
    )
    return AttestOptions(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "root")


def statements(store: Store, descriptors: list[Descriptor]) -> list[list[dict[str, object]]]:
    return [read_statements(store, d) for d in descriptors]


@pytest.mark.parametrize("version", ["v1", "v0.2"])
def test_provenance_of_each_platform_validates_and_names_what_was_used(
    store: Store, tmp_path: Path, version: str
) -> None:
    built, manifests = result(store)
    with store.lease() as lease:
        atts = attach(
            store, lease, built, manifests, options(tmp_path, f"mode=max,version={version}")
        )
    validate = validate_slsa_v1 if version == "v1" else validate_slsa_v02
    for platform, manifest, found in zip(
        (AMD64, ARM64), manifests, statements(store, atts), strict=True
    ):
        provenance = found[0]
        assert validate(provenance) == []
        assert provenance["subject"] == [
            {
                "name": f"pkg:docker/registry.example.com/team/app@1?platform={platform.os}%2F{platform.architecture}",
                "digest": {"sha256": manifest.digest.hex},
            }
        ]
        text = json.dumps(provenance)
        predicate: dict[str, object] = provenance["predicate"]  # type: ignore[assignment]
        uris = {
            m["uri"]: m["digest"]
            for m in (
                predicate["buildDefinition"]["resolvedDependencies"]  # type: ignore[index]
                if version == "v1"
                else predicate["materials"]
            )
        }
        # The BUILDPLATFORM stage's base is amd64's on every platform.
        assert uris["pkg:docker/golang@1.22?platform=linux%2Famd64"] == {"sha256": GOLANG.hex}
        arch = platform.architecture
        assert uris[f"pkg:docker/debian@12?platform=linux%2F{arch}"] == {"sha256": DEBIAN.hex}
        assert uris[f"pkg:oci/base?digest={LAYOUT}&platform=linux%2F{arch}"] == {
            "sha256": LAYOUT.hex
        }
        # The URL with its credentials masked, and the digest of what came.
        assert uris["https://xxxxx:xxxxx@downloads.example.com/tool.tgz"] == {"sha256": TOOL.hex}
        assert "user:pw" not in text
        # max keeps the values, the ids of secrets and SSH sockets, the steps.
        assert '"build-arg:API_TOKEN": "s3cr3t"' in text and '"label:owner": "l4b3l"' in text
        assert '"context:unused": "docker-image://alpine:3.19"' in text
        assert '"context:vendor": "local:vendor"' in text
        assert '{"id": "npmrc"}' in text and '{"id": "default", "optional": true}' in text
        assert '"llbDefinition"' in text and '"step1"' in text
        assert '"layerCompression"' in text and '"isa-l"' in text
        assert "2023-11-14T22:13:20.25Z" in text  # started


@pytest.mark.parametrize("epoch", [1_600_000_000, None])
def test_min_provenance_has_no_value_and_no_times(
    store: Store, tmp_path: Path, epoch: int | None
) -> None:
    built, manifests = result(store, epoch=epoch)
    with store.lease() as lease:
        atts = attach(store, lease, built, manifests, options(tmp_path, "mode=min"))
    provenance = statements(store, atts)[0][0]
    text = json.dumps(provenance)
    for planted in ("s3cr3t", "API_TOKEN", "l4b3l", "npmrc", "llbDefinition"):
        assert planted not in text
    meta = provenance["predicate"]["runDetails"]["metadata"]  # type: ignore[index]
    assert "startedOn" not in meta and "finishedOn" not in meta and "invocationId" not in meta
    assert meta["buildkit_completeness"]["request"] is False
    assert validate_slsa_v1(provenance) == []


def test_sde_makes_the_attestations_the_same_bytes(store: Store, tmp_path: Path) -> None:
    digests = []
    for _ in range(2):
        built, manifests = result(store, epoch=1_600_000_000)
        with store.lease() as lease:
            atts = attach(store, lease, built, manifests, options(tmp_path, "mode=max"))
        digests.append([a.digest for a in atts])
    assert digests[0] == digests[1]
    built, manifests = result(store)
    with store.lease() as lease:
        atts = attach(store, lease, built, manifests, options(tmp_path, "mode=max"))
    assert [a.digest for a in atts] != digests[0]  # times and the invocation id


def test_sboms_of_the_image_the_scanned_stage_and_the_context(store: Store, tmp_path: Path) -> None:
    built, manifests = result(store)
    with store.lease() as lease:
        atts = attach(store, lease, built, manifests, options(tmp_path, "mode=min"))
    found = statements(store, atts)[1]
    assert [s["predicateType"] for s in found] == [
        "https://slsa.dev/provenance/v1",
        *["https://spdx.dev/Document"] * 3,
    ]
    documents = {s["predicate"]["name"]: s["predicate"] for s in found[1:]}  # type: ignore[index]
    assert sorted(documents) == ["registry.example.com/team/app:1", "sbom-build", "sbom-context"]

    def purls(name: str) -> set[str]:
        return {
            ref["referenceLocator"]
            for p in documents[name]["packages"]
            for ref in p.get("externalRefs", [])
        }

    image = purls("registry.example.com/team/app:1")
    assert any(p.startswith("pkg:deb/debian/bash@") for p in image)
    assert any(p.startswith("pkg:pypi/") for p in image)
    assert "pkg:npm/left-pad@1.3.0" in purls("sbom-build")
    context = purls("sbom-context")
    assert "pkg:pypi/vendored@0.1" in context
    assert not any("hidden" in p for p in context)  # left out by .dockerignore


def test_attestation_manifest_shapes(store: Store, tmp_path: Path) -> None:
    built, manifests = result(store)
    with store.lease() as lease:
        new = attach(store, lease, built, manifests, options(tmp_path, "mode=min"))
        old = attach(
            store, lease, built, manifests, options(tmp_path, "mode=min", oci_artifact=False)
        )
    for atts in (new, old):
        for att, subject in zip(atts, manifests, strict=True):
            assert att.platform == Platform("unknown", "unknown")
            assert att.annotation(ATTESTATION_TYPE) == ATTESTATION_MANIFEST
            assert att.annotation(ATTESTATION_REF) == str(subject.digest)
    artifact = store.manifest(new[0])
    assert artifact.artifact_type == ARTIFACT_TYPE
    assert artifact.config.media_type == mediatype.OCI_EMPTY
    assert store.content.read_bytes(artifact.config.digest) == b"{}"
    assert artifact.subject == Descriptor(
        manifests[0].media_type, manifests[0].digest, manifests[0].size
    )
    assert {x.annotation("in-toto.io/predicate-type") for x in artifact.layers} == {
        "https://slsa.dev/provenance/v1",
        "https://spdx.dev/Document",
    }
    assert all(s["_type"] == intoto.STATEMENT_V1 for s in read_statements(store, new[0]))

    legacy = store.manifest(old[0])
    assert legacy.subject is None and not legacy.artifact_type
    config = json.loads(store.content.read_bytes(legacy.config.digest))
    assert legacy.config.media_type == mediatype.OCI_CONFIG
    assert config == {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [str(x.digest) for x in legacy.layers]},
    }
    assert all(s["_type"] == intoto.STATEMENT_V01 for s in read_statements(store, old[0]))
