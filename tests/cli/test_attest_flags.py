"""`--attest`, `--provenance`, `--sbom`, BUILDX_NO_DEFAULT_ATTESTATIONS and the outputs'
`oci-artifact`, read as buildx and BuildKit read them."""

from __future__ import annotations

import pytest

from bale.cli.attest_flags import oci_artifact, parse_attestations
from bale.errors import InvalidArgument
from bale.exporters.attest import DEFAULT_PROVENANCE, SbomOptions
from bale.exporters.outputs import parse_output
from bale.exporters.provenance import ProvenanceOptions


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILDX_NO_DEFAULT_ATTESTATIONS", raising=False)
    monkeypatch.delenv("BUILDX_NO_DEFAULT_OCI_ARTIFACT", raising=False)


def test_no_flag_is_buildx_default_min_provenance_and_no_sbom() -> None:
    asked = parse_attestations((), "", "")
    assert asked.provenance == DEFAULT_PROVENANCE
    assert asked.provenance.mode == "min" and asked.provenance.inline_only
    assert asked.provenance.version == "v1"
    assert asked.sbom is None


@pytest.mark.parametrize("value", ["1", "true", "True", "t"])
def test_the_default_can_be_turned_off_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BUILDX_NO_DEFAULT_ATTESTATIONS", value)
    assert parse_attestations((), "", "").provenance is None
    # An explicit flag still counts.
    assert parse_attestations((), "mode=min", "").provenance == ProvenanceOptions(mode="min")


def test_a_bad_environment_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDX_NO_DEFAULT_ATTESTATIONS", "sometimes")
    with pytest.raises(InvalidArgument, match="invalid BUILDX_NO_DEFAULT_ATTESTATIONS"):
        parse_attestations((), "", "")


def test_provenance_true_is_buildkit_default_max_and_false_disables() -> None:
    assert parse_attestations((), "true", "").provenance == ProvenanceOptions(mode="max")
    assert parse_attestations((), "false", "").provenance is None
    assert parse_attestations((), "0", "").provenance is None


def test_provenance_parameters() -> None:
    asked = parse_attestations(
        (), "mode=max,version=v0.2,builder-id=https://ci.example/run/1,reproducible=true", ""
    )
    assert asked.provenance == ProvenanceOptions(
        mode="max", version="v0.2", builder_id="https://ci.example/run/1", reproducible=True
    )


def test_later_entries_of_a_type_replace_earlier_ones() -> None:
    asked = parse_attestations(
        ("type=provenance,mode=min", "type=sbom", "type=provenance,mode=max,version=v0.2"),
        "",
        "",
    )
    assert asked.provenance == ProvenanceOptions(mode="max", version="v0.2")
    assert asked.sbom == SbomOptions()
    # The shorthand comes after --attest, as buildx appends it.
    assert parse_attestations(("type=sbom",), "", "false").sbom is None
    assert parse_attestations(("type=provenance,disabled=true",), "", "").provenance is None


@pytest.mark.parametrize(
    ("attest", "provenance", "message"),
    [
        (("type=foo",), "", 'unknown attestation type "foo"'),
        (("mode=max",), "", "attestation type not specified"),
        (("type=provenance,mode",), "", "invalid value mode"),
        ((), "mode=full-ish", 'invalid mode "full-ish"'),
        ((), "version=v3", "invalid provenance SLSA version: v3"),
        ((), "reproducible=maybe", 'failed to parse reproducible flag "maybe"'),
    ],
)
def test_bad_values_are_clear_errors(
    attest: tuple[str, ...], provenance: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_attestations(attest, provenance, "")


def test_an_sbom_generator_image_is_refused_clearly() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_attestations(("type=sbom,generator=docker/buildkit-syft-scanner",), "", "")
    assert "does not run SBOM generator images" in info.value.message
    assert "drop generator=" in info.value.hint


def test_oci_artifact_is_the_image_outputs_option() -> None:
    assert oci_artifact([parse_output("type=image")]) is True
    assert oci_artifact([parse_output("type=image,oci-artifact=false")]) is False
    assert oci_artifact([parse_output("type=oci,dest=x.tar,oci-artifact=false")]) is False
    # Outputs without an index have no say.
    assert oci_artifact([parse_output("type=local,dest=out")]) is True
    # BuildKit: no OCI artifact without OCI media types.
    assert oci_artifact([parse_output("type=image,oci-mediatypes=false")]) is False
    with pytest.raises(InvalidArgument, match='"oci-artifact=true" conflicts with'):
        oci_artifact([parse_output("type=image,oci-mediatypes=false,oci-artifact=true")])
    with pytest.raises(InvalidArgument, match="outputs disagree on oci-artifact"):
        oci_artifact([parse_output("type=image"), parse_output("type=registry,oci-artifact=0")])


def test_oci_artifact_default_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDX_NO_DEFAULT_OCI_ARTIFACT", "true")
    assert oci_artifact([parse_output("type=image")]) is False
    assert oci_artifact([parse_output("type=image,oci-artifact=true")]) is True
