"""imagetools create / inspect against a real registry, read back by skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from reghelp import RegistryServer, make_image

from bale.cli.main import main
from bale.oci import mediatype
from bale.oci.manifest import Index
from bale.oci.platform import Platform
from bale.registry import pull, push_image
from bale.registry.transport import Registries
from bale.store.check import check_store
from bale.store.local import Store


def skopeo(*args: str) -> bytes:
    path = shutil.which("skopeo")
    if path is None:
        pytest.skip("skopeo is not installed (scripts/setup-host.sh installs it)")
    return subprocess.run([path, *args], capture_output=True, check=True).stdout


def test_create_merges_single_platform_pushes(
    plain_registry: RegistryServer,
    registries: Registries,
    store: Store,
    other_store: Store,
    docker_config: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = plain_registry.host
    amd = make_image(
        store, "it-amd:1", ("linux/amd64",), seed="it-amd", single=True, attestations=False
    )
    arm = make_image(
        store, "it-arm:1", ("linux/arm64",), seed="it-arm", single=True, attestations=False
    )
    assert mediatype.is_manifest(amd.media_type)
    # Per-platform pushes: one by tag in another repository, one by digest only.
    push_image(store, amd, f"{host}/it/amd:1", registries=registries)
    push_image(store, arm, f"{host}/it/multi:1", registries=registries, by_digest=True)

    sources = [f"{host}/it/amd:1", f"{host}/it/multi@{arm.digest}"]
    assert main(["imagetools", "create", "-t", f"{host}/it/multi:both", *sources]) == 0
    printed = capsys.readouterr().out.strip()

    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host}/it/multi:both")
    assert printed == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    index = Index.parse(raw)
    assert index.media_type == mediatype.OCI_INDEX
    assert {(m.digest, m.platform) for m in index.manifests} == {
        (amd.digest, Platform.parse("linux/amd64")),
        (arm.digest, Platform.parse("linux/arm64")),
    }
    # skopeo follows the index to each platform's config (the amd64 one was copied over).
    for arch in ("amd64", "arm64"):
        info = json.loads(
            skopeo(
                "inspect",
                "--tls-verify=false",
                "--override-arch",
                arch,
                f"docker://{host}/it/multi:both",
            )
        )
        assert info["Architecture"] == arch
    assert "from=it%2Famd" in plain_registry.log_text()

    pulled = pull(other_store, f"{host}/it/multi:both", registries=registries, all_platforms=True)
    assert pulled.target.size == len(raw)
    assert check_store(other_store) == []

    # --dry-run prints the index without pushing it.
    assert main(["imagetools", "create", "--dry-run", *sources]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(raw)


# -- inspect --format, as buildx's printers.go -------------------------------------------------


def _inspect(capsys: pytest.CaptureFixture[str], ref: str, template: str) -> str:
    assert main(["imagetools", "inspect", "--format", template, ref]) == 0
    return capsys.readouterr().out


def _pushed(
    capsys: pytest.CaptureFixture[str], store: Store, host: str, name: str, **kwargs: object
) -> tuple[str, bytes]:
    """An image made in the store, pushed with `bale push`; (reference, index bytes)."""
    ref = f"{host}/{name}"
    make_image(store, ref, **kwargs)  # type: ignore[arg-type]
    assert main(["--root", str(store.root), "push", "-q", ref]) == 0
    capsys.readouterr()  # what push printed
    return ref, skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")


def _go_descriptor(entry: dict[str, object]) -> dict[str, object]:
    """A descriptor in v1.Descriptor's field order (the test's own statement of Go's)."""
    out = {k: entry[k] for k in ("mediaType", "digest", "size")}
    if entry.get("annotations"):
        out["annotations"] = dict(sorted(entry["annotations"].items()))  # type: ignore[union-attr]
    if "platform" in entry:
        plat = entry["platform"]
        out["platform"] = {k: plat[k] for k in ("architecture", "os", "variant") if k in plat}  # type: ignore[index,operator]
    return out


def _config_of(store: Store, index: Index, platform: str) -> dict[str, object]:
    for desc in index.manifests:
        if str(desc.platform) == platform:
            config = json.loads(store.content.read_bytes(store.manifest(desc).config.digest))
            return {
                "architecture": config["architecture"],
                "os": config["os"],
                **({"variant": config["variant"]} if "variant" in config else {}),
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": config["rootfs"]["diff_ids"]},
            }
    raise AssertionError(platform)


def test_inspect_format_multi_platform_legacy_attestations(
    plain_registry: RegistryServer,
    store: Store,
    docker_config: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref, raw = _pushed(
        capsys, store, plain_registry.host, "fmt/legacy:1", sbom=True, seed="fmt-legacy"
    )
    index = Index.parse(raw)
    doc = json.loads(raw)

    assert _inspect(capsys, ref, "{{.Name}}") == ref  # as typed, and no newline added
    assert _inspect(capsys, ref, "{{.Manifest.Digest}} {{len .Manifest.Manifests}}") == (
        f"sha256:{hashlib.sha256(raw).hexdigest()} 4"
    )
    expected_manifest = {
        "schemaVersion": 2,
        "mediaType": mediatype.OCI_INDEX,
        "digest": f"sha256:{hashlib.sha256(raw).hexdigest()}",
        "size": len(raw),
        "manifests": [_go_descriptor(m) for m in doc["manifests"]],
    }
    assert _inspect(capsys, ref, "{{json .Manifest}}") == json.dumps(expected_manifest, indent=2)

    image = json.loads(_inspect(capsys, ref, "{{json .Image}}"))
    assert list(image) == ["linux/amd64", "linux/arm64"]
    assert image == {p: _config_of(store, index, p) for p in ("linux/amd64", "linux/arm64")}
    # Key order is Go's v1.Image order, not the document's.
    text = _inspect(capsys, ref, '{{json (index .Image "linux/arm64")}}')
    assert text == json.dumps(_config_of(store, index, "linux/arm64"), indent=2)
    assert _inspect(capsys, ref, '{{(index .Image "linux/arm64").Architecture}}') == "arm64"

    assert _inspect(capsys, ref, "{{json .Provenance}}") == json.dumps(
        {
            p: {"SLSA": {"buildType": "bale", "builder": {"id": "fmt-legacy"}}}
            for p in ("linux/amd64", "linux/arm64")
        },
        indent=2,
    )
    sbom = json.loads(_inspect(capsys, ref, "{{json .SBOM}}"))
    assert sbom["linux/arm64"] == {
        "SPDX": {
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": "sbom-fmt-legacy",
            "packages": [{"name": "busybox", "size": 1000000}],
        }
    }
    # Numbers in predicates are Go float64s: 1000000 stays 1000000 in JSON, 1e+06 in text.
    assert '"size": 1000000' in _inspect(capsys, ref, "{{json .SBOM}}")
    assert _inspect(capsys, ref, '{{index .SBOM "linux/amd64" | json | len}}') != "0"

    # {{.Manifest}} alone is the default text.
    whole = _inspect(capsys, ref, "{{ .Manifest }}\n")
    assert main(["imagetools", "inspect", ref]) == 0
    assert whole == capsys.readouterr().out


def test_inspect_format_one_platform_artifact_attestations(
    plain_registry: RegistryServer,
    store: Store,
    docker_config: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref, raw = _pushed(
        capsys,
        store,
        plain_registry.host,
        "fmt/artifact:1",
        platforms=("linux/arm64",),
        sbom=True,
        seed="fmt-art",
        attestation_layout="artifact",
    )
    att = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{ref.split(':1')[0]}@{json.loads(raw)['manifests'][1]['digest']}",
        )
    )
    assert att["artifactType"] == mediatype.ATTESTATION_ARTIFACT and "subject" in att
    # One platform: .Image is the config itself, .Provenance and .SBOM the stubs.
    assert json.loads(_inspect(capsys, ref, "{{json .Image}}"))["architecture"] == "arm64"
    assert json.loads(_inspect(capsys, ref, "{{json .Provenance}}")) == {
        "SLSA": {"buildType": "bale", "builder": {"id": "fmt-art"}}
    }
    assert json.loads(_inspect(capsys, ref, "{{json .SBOM}}"))["SPDX"]["name"] == "sbom-fmt-art"
    assert _inspect(capsys, ref, "{{.Image.Architecture}}/{{.Provenance.SLSA.buildType}}") == (
        "arm64/bale"
    )


def test_inspect_format_finds_attestations_by_subject_alone(
    plain_registry: RegistryServer,
    store: Store,
    docker_config: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref, raw = _pushed(
        capsys,
        store,
        plain_registry.host,
        "fmt/subject:1",
        seed="fmt-sub",
        attestation_layout="subject",
    )
    assert all("annotations" not in m for m in json.loads(raw)["manifests"])
    provenance = json.loads(_inspect(capsys, ref, "{{json .Provenance}}"))
    assert provenance == {
        p: {"SLSA": {"buildType": "bale", "builder": {"id": "fmt-sub"}}}
        for p in ("linux/amd64", "linux/arm64")
    }
    assert json.loads(_inspect(capsys, ref, "{{json .SBOM}}")) == {}
    # The attestation manifests are not platforms of the image.
    assert list(json.loads(_inspect(capsys, ref, "{{json .Image}}"))) == [
        "linux/amd64",
        "linux/arm64",
    ]


def test_inspect_format_single_manifest_and_errors(
    plain_registry: RegistryServer,
    store: Store,
    docker_config: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = f"{plain_registry.host}/fmt/single:1"
    make_image(store, ref, ("linux/amd64",), single=True, attestations=False)
    assert main(["--root", str(store.root), "push", "-q", ref]) == 0
    capsys.readouterr()
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    # A manifest: .Manifest is its descriptor.
    assert _inspect(capsys, ref, "{{json .Manifest}}") == json.dumps(
        {
            "mediaType": mediatype.OCI_MANIFEST,
            "digest": f"sha256:{hashlib.sha256(raw).hexdigest()}",
            "size": len(raw),
        },
        indent=2,
    )
    assert _inspect(capsys, ref, "{{json .Provenance}}") == "{}"
    assert _inspect(capsys, ref, "{{json .}}").startswith('{\n  "name": ')
    assert main(["imagetools", "inspect", "--raw", "--format", "{{.Name}}", ref]) == 1
    assert "format and raw cannot be used together" in capsys.readouterr().err
    assert main(["imagetools", "inspect", "--format", "{{.Nope}}", ref]) == 1
    assert "can't evaluate field Nope in type imagetools.tplInput" in capsys.readouterr().err
