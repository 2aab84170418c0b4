"""SLSA provenance statements: BuildKit's shape for v1 and v0.2, min and max, validated
against the SLSA specs, and min never carrying a build-arg, label or secret."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from slsa_schema import validate_slsa_v02, validate_slsa_v1

from bale.errors import InvalidArgument
from bale.exporters import intoto
from bale.exporters.provenance import (
    BuildStep,
    Compression,
    GitMaterial,
    ImageMaterial,
    MountUse,
    NamedContext,
    ProvenanceInput,
    ProvenanceOptions,
    URLMaterial,
    provenance_statement,
    provenance_warnings,
    redact_credentials,
)
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.platform import Platform

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
MANIFEST = Descriptor("application/vnd.oci.image.manifest.v1+json", Digest.of(b"manifest"), 512)
GOLANG = Digest.of(b"golang index")
ALPINE = Digest.of(b"alpine index")
TARBALL = Digest.of(b"tarball")
DOCKERFILE = b"FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM alpine:3.19\n"


def build(**changes: object) -> ProvenanceInput:
    item = ProvenanceInput(
        platform=ARM64,
        subject=MANIFEST,
        build_platform=AMD64,
        options=ProvenanceOptions.parse("mode=max,builder-id=https://ci.example.com/runs/7"),
        subject_names=("app:1", "127.0.0.1:5000/team/app:1"),
        materials=(
            # The build stage runs on the build platform: its base resolves for amd64.
            ImageMaterial("golang:1.22", GOLANG, AMD64),
            ImageMaterial("alpine:3.19", ALPINE, ARM64),
            URLMaterial("https://user:pw@downloads.example.com/tool.tgz", TARBALL),
        ),
        named_contexts=(
            NamedContext("vendor", "./third_party"),
            NamedContext(
                "base", "docker-image://alpine:3.19", ImageMaterial("alpine:3.19", ALPINE, ARM64)
            ),
        ),
        build_args=(("API_TOKEN", "s3cr3t"), ("VERSION", "1.2.3")),
        labels=(("org.example.owner", "l4b3l-v4lue"),),
        secrets=(
            MountUse("npmrc"),
            MountUse("npmrc", optional=True),
            MountUse("aws", optional=True),
        ),
        ssh=(MountUse(""),),
        dockerfile="Dockerfile",
        dockerfile_digest=Digest.of(DOCKERFILE),
        dockerfile_source=DOCKERFILE,
        frontend_attrs=(("target", "release"), ("platform", "linux/arm64"), ("attest:sbom", "")),
        started=datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC),
        finished=datetime(2026, 3, 1, 12, 0, 42, tzinfo=UTC),
        invocation_id="q1w2e3r4t5y6",
        node="builder-node-1",
        compression=Compression("gzip", 1, "isal", "1.7.1"),
        steps=(BuildStep("step0", '{"op": {"source": {}}}'), BuildStep("step1", "", ("step0:0",))),
    )
    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]


def options(text: str) -> ProvenanceOptions:
    return ProvenanceOptions.parse(text + ",builder-id=https://ci.example.com/runs/7")


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("reproducible", [False, True])
def test_every_mode_validates_against_the_slsa_specs(mode: str, reproducible: bool) -> None:
    for version, validate in (("v1", validate_slsa_v1), ("v0.2", validate_slsa_v02)):
        item = build(options=options(f"mode={mode},version={version},reproducible={reproducible}"))
        doc = provenance_statement(item)
        assert doc["_type"] == intoto.STATEMENT_V1
        assert validate(json.loads(intoto.statement_bytes(doc))) == [], version
        if version == "v0.2":
            # The older attestation manifest shape's envelope (attestation_manifest).
            legacy = {**doc, "_type": intoto.STATEMENT_V01}
            assert validate_slsa_v02(legacy, legacy_statement=True) == []


def test_without_a_builder_id_the_id_is_empty_as_buildkit_writes_it() -> None:
    doc = provenance_statement(build(options=ProvenanceOptions.parse("mode=min")))
    assert doc["predicate"]["runDetails"]["builder"] == {"id": ""}
    # The only thing the SLSA spec holds against it is that required id.
    assert validate_slsa_v1(doc) == ["runDetails.builder.id: required (empty)"]


@pytest.mark.parametrize("version", ["v1", "v0.2"])
def test_min_mode_never_carries_build_arg_label_or_secret_values(version: str) -> None:
    item = build(options=options(f"mode=min,version={version}"))
    text = intoto.statement_bytes(provenance_statement(item)).decode()
    for planted in ("s3cr3t", "API_TOKEN", "1.2.3", "l4b3l-v4lue", "org.example.owner"):
        assert planted not in text
    for key in ("build-arg:", "label:", "npmrc", '"secrets"', '"ssh"', "llbDefinition", "RlJPTS"):
        assert key not in text
    # What min keeps: the frontend options that are not arguments, and the materials.
    doc = json.loads(text)
    request = (
        doc["predicate"]["buildDefinition"]["externalParameters"]["request"]
        if version == "v1"
        else doc["predicate"]["invocation"]["parameters"]
    )
    assert request["args"] == {
        "context:base": "docker-image://alpine:3.19",
        "context:vendor": "local:vendor",
        "target": "release",
    }
    assert "pkg:docker/golang@1.22?platform=linux%2Famd64" in text
    assert provenance_warnings(item) == []


def test_min_mode_marks_the_request_incomplete_only_when_it_dropped_something() -> None:
    meta = provenance_statement(build(options=options("mode=min")))["predicate"]["runDetails"][
        "metadata"
    ]
    assert meta["buildkit_completeness"]["request"] is False
    bare = build(options=options("mode=min"), build_args=(), labels=())
    meta = provenance_statement(bare)["predicate"]["runDetails"]["metadata"]
    assert meta["buildkit_completeness"]["request"] is True


def test_max_mode_carries_values_ids_steps_and_source_and_warns_about_secret_names() -> None:
    item = build()
    doc = provenance_statement(item)
    definition = doc["predicate"]["buildDefinition"]
    request = definition["externalParameters"]["request"]
    assert request["args"] == {
        "build-arg:API_TOKEN": "s3cr3t",
        "build-arg:VERSION": "1.2.3",
        "context:base": "docker-image://alpine:3.19",
        "context:vendor": "local:vendor",
        "label:org.example.owner": "l4b3l-v4lue",
        "target": "release",
    }
    # One entry per id, required when any use requires it; an unnamed SSH is "default".
    assert request["secrets"] == [{"id": "aws", "optional": True}, {"id": "npmrc"}]
    assert request["ssh"] == [{"id": "default"}]
    assert request["locals"] == [{"name": "context"}, {"name": "dockerfile"}, {"name": "vendor"}]
    assert definition["internalParameters"]["buildConfig"] == {
        "llbDefinition": [
            {"id": "step0", "op": {"op": {"source": {}}}},
            {"id": "step1", "inputs": ["step0:0"]},
        ]
    }
    source = doc["predicate"]["runDetails"]["metadata"]["buildkit_metadata"]["source"]
    assert source["infos"][0]["filename"] == "Dockerfile"
    assert source["infos"][0]["language"] == "Dockerfile"
    warnings = provenance_warnings(item)
    assert [w.rule for w in warnings] == ["SecretsUsedInArgOrEnv"]
    assert '"API_TOKEN"' in warnings[0].message and "VERSION" not in warnings[0].message
    assert (
        warnings[0].url == "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/"
    )


def test_v1_fields_come_in_buildkit_order() -> None:
    doc = provenance_statement(build())
    assert list(doc) == ["_type", "predicateType", "subject", "predicate"]
    pred = doc["predicate"]
    assert list(pred) == ["buildDefinition", "runDetails"]
    # Go encodes the embedded SLSA struct's fields first, then BuildKit's overrides.
    assert list(pred["buildDefinition"]) == [
        "buildType",
        "resolvedDependencies",
        "externalParameters",
        "internalParameters",
    ]
    assert list(pred["buildDefinition"]["externalParameters"]) == ["configSource", "request"]
    assert list(pred["buildDefinition"]["externalParameters"]["request"]) == [
        "frontend",
        "args",
        "secrets",
        "ssh",
        "locals",
    ]
    # internalParameters goes through a map in BuildKit: sorted keys.
    internal = pred["buildDefinition"]["internalParameters"]
    assert list(internal) == sorted(internal)
    assert internal["builderPlatform"] == "linux/amd64"
    assert list(pred["runDetails"]) == ["builder", "metadata"]
    assert list(pred["runDetails"]["metadata"]) == [
        "invocationId",
        "startedOn",
        "finishedOn",
        "buildkit_metadata",
        "buildkit_completeness",
    ]
    assert pred["runDetails"]["metadata"]["startedOn"] == "2026-03-01T12:00:00.25Z"
    assert pred["runDetails"]["metadata"]["finishedOn"] == "2026-03-01T12:00:42Z"
    assert doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert doc["_type"] == "https://in-toto.io/Statement/v1"


def test_v02_is_buildkits_conversion_of_v1() -> None:
    doc = provenance_statement(build(options=options("mode=max,version=v0.2")))
    assert doc["predicateType"] == "https://slsa.dev/provenance/v0.2"
    pred = doc["predicate"]
    assert list(pred) == [
        "builder",
        "buildType",
        "materials",
        "invocation",
        "buildConfig",
        "metadata",
    ]
    assert pred["buildType"] == "https://mobyproject.org/buildkit@v1"
    assert pred["invocation"]["configSource"] == {
        "digest": {"sha256": Digest.of(DOCKERFILE).hex},
        "entryPoint": "Dockerfile",
    }
    assert pred["invocation"]["environment"]["platform"] == "linux/amd64"
    assert list(pred["metadata"]) == [
        "buildInvocationID",
        "buildStartedOn",
        "buildFinishedOn",
        "completeness",
        "reproducible",
        "https://mobyproject.org/buildkit@v1#metadata",
    ]
    assert pred["metadata"]["completeness"] == {
        "parameters": True,
        "environment": True,
        "materials": False,
    }
    assert pred["metadata"]["reproducible"] is False


def test_materials_record_the_platform_each_base_was_resolved_for() -> None:
    deps = provenance_statement(build())["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps == [
        {"uri": "pkg:docker/alpine@3.19?platform=linux%2Farm64", "digest": {"sha256": ALPINE.hex}},
        {"uri": "pkg:docker/golang@1.22?platform=linux%2Famd64", "digest": {"sha256": GOLANG.hex}},
        # Credentials in a URL never reach the provenance.
        {
            "uri": "https://xxxxx:xxxxx@downloads.example.com/tool.tgz",
            "digest": {"sha256": TARBALL.hex},
        },
    ]


def test_subjects_are_the_image_names_as_package_urls() -> None:
    doc = provenance_statement(build())
    assert doc["subject"] == [
        {
            "name": "pkg:docker/app@1?platform=linux%2Farm64",
            "digest": {"sha256": MANIFEST.digest.hex},
        },
        {
            "name": "pkg:docker/127.0.0.1%3A5000/team/app@1?platform=linux%2Farm64",
            "digest": {"sha256": MANIFEST.digest.hex},
        },
    ]
    unnamed = provenance_statement(build(subject_names=()))
    assert unnamed["subject"] == [{"name": "_", "digest": {"sha256": MANIFEST.digest.hex}}]


def test_reproducible_drops_times_and_node_and_keeps_the_digest() -> None:
    first = build(options=options("mode=max,reproducible=true"))
    later = dataclasses.replace(
        first,
        started=first.started + timedelta(days=1),  # type: ignore[operator]
        finished=first.finished + timedelta(days=1),  # type: ignore[operator]
        node="another-node",
    )
    a = intoto.statement_bytes(provenance_statement(first))
    b = intoto.statement_bytes(provenance_statement(later))
    assert a == b
    meta = json.loads(a)["predicate"]["runDetails"]["metadata"]
    assert "startedOn" not in meta and "finishedOn" not in meta
    assert meta["buildkit_reproducible"] is True
    assert b"builder-node-1" not in a
    v02 = provenance_statement(
        dataclasses.replace(first, options=options("reproducible=true,version=v0.2"))
    )
    assert v02["predicate"]["metadata"]["reproducible"] is True
    assert "buildStartedOn" not in v02["predicate"]["metadata"]
    # Without reproducible the node and the times are there.
    text = intoto.statement_bytes(provenance_statement(build())).decode()
    assert "builder-node-1" in text and "2026-03-01T12:00:00.25Z" in text


def test_the_layer_compressor_is_recorded_for_rebuilds_elsewhere() -> None:
    for version, where in (
        ("v1", ("buildDefinition", "internalParameters")),
        ("v0.2", ("invocation", "environment")),
    ):
        pred = provenance_statement(build(options=options(f"mode=min,version={version}")))[
            "predicate"
        ]
        assert pred[where[0]][where[1]]["layerCompression"] == {
            "implementation": "isal",
            "implementationVersion": "1.7.1",
            "level": 1,
            "type": "gzip",
        }


def test_a_remote_git_context_is_the_config_source() -> None:
    commit = "4b220de5058abfd01ff619c9d2ff6b09a049bea0"
    item = build(
        context="https://tok:x@github.com/example/app.git#main",
        locals=(),
        named_contexts=(),
        network_access=False,
        materials=(GitMaterial("https://tok:x@github.com/example/app.git#main", commit),),
    )
    pred = provenance_statement(item)["predicate"]
    assert pred["buildDefinition"]["externalParameters"]["configSource"] == {
        "uri": "https://xxxxx:xxxxx@github.com/example/app.git#main",
        "digest": {"sha1": commit},
        "path": "Dockerfile",
    }
    meta = pred["runDetails"]["metadata"]
    # No local sources and no network: BuildKit calls that hermetic and complete.
    assert meta["buildkit_hermetic"] is True
    assert meta["buildkit_completeness"]["resolvedDependencies"] is True
    v02 = provenance_statement(dataclasses.replace(item, options=options("version=v0.2")))[
        "predicate"
    ]
    assert v02["metadata"]["https://mobyproject.org/buildkit@v1#hermetic"] is True


def test_vcs_options_move_to_buildkit_metadata() -> None:
    item = build(
        frontend_attrs=(
            ("vcs:source", "https://a:b@git.example.com/x.git"),
            ("vcs:revision", "abc"),
        )
    )
    pred = provenance_statement(item)["predicate"]
    assert pred["runDetails"]["metadata"]["buildkit_metadata"]["vcs"] == {
        "revision": "abc",
        "source": "https://xxxxx:xxxxx@git.example.com/x.git",
    }
    assert not any(
        k.startswith("vcs:")
        for k in pred["buildDefinition"]["externalParameters"]["request"]["args"]
    )


def test_options_parse_as_buildkit_reads_them() -> None:
    assert ProvenanceOptions.parse("") == ProvenanceOptions(mode="max")
    assert ProvenanceOptions.parse("mode=full").mode == "max"
    parsed = ProvenanceOptions.parse("mode=min,builder-id=https://ci/1,reproducible=1,version=v0.2")
    assert (parsed.mode, parsed.builder_id, parsed.reproducible, parsed.version) == (
        "min",
        "https://ci/1",
        True,
        "v0.2",
    )
    assert parsed.predicate_type == "https://slsa.dev/provenance/v0.2"
    with pytest.raises(InvalidArgument, match='invalid mode "medium"'):
        ProvenanceOptions.parse("mode=medium")
    with pytest.raises(InvalidArgument, match="invalid provenance SLSA version: v3"):
        ProvenanceOptions.parse("version=v3")
    with pytest.raises(InvalidArgument, match='failed to parse reproducible flag "maybe"'):
        ProvenanceOptions.parse("reproducible=maybe")


@pytest.mark.parametrize(
    ("ref", "platform", "purl"),
    [
        ("alpine", AMD64, "pkg:docker/alpine@latest?platform=linux%2Famd64"),
        ("docker.io/library/alpine:3.19", None, "pkg:docker/alpine@3.19"),
        (f"alpine@{ALPINE}", None, f"pkg:docker/alpine?digest={ALPINE}"),
        (
            f"alpine:3.19@{ALPINE}",
            ARM64,
            f"pkg:docker/alpine@3.19?digest={ALPINE}&platform=linux%2Farm64",
        ),
        (
            "ghcr.io/example/tools/app:v1",
            Platform.parse("linux/arm/v7"),
            "pkg:docker/ghcr.io/example/tools/app@v1?platform=linux%2Farm%2Fv7",
        ),
        ("localhost:5000/app:1", None, "pkg:docker/localhost%3A5000/app@1"),
    ],
)
def test_image_purls_match_buildkits(ref: str, platform: Platform | None, purl: str) -> None:
    assert intoto.image_purl(ref, platform) == purl


def test_statement_bytes_are_gos_json_encoding() -> None:
    assert intoto.statement_bytes({"b": "<a&b>", "a": ["é", 1, True, None]}) == (
        '{"b":"\\u003ca\\u0026b\\u003e","a":["é",1,true,null]}'.encode()
    )


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:pw@host.example/x.git", "https://xxxxx:xxxxx@host.example/x.git"),
        ("https://token@host.example/x.git", "https://xxxxx@host.example/x.git"),
        ("https://host.example/x.git", "https://host.example/x.git"),
        ("./local/dir", "./local/dir"),
    ],
)
def test_credentials_are_redacted_as_buildkit_does(url: str, redacted: str) -> None:
    assert redact_credentials(url) == redacted
