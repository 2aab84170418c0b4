"""Attestations of real builds through the CLI: what provenance keeps of a secret-looking
build argument (nothing, by default), SLSA v1 and v0.2 that validate, each base named for the
platform it was resolved for, SPDX documents that the SPDX tools validate, and attestation
manifests that skopeo, containerd and a Distribution registry take in both shapes."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from buildhelp import TESTS, bale, context_dir, require_tool

from bale.exporters.attestation_manifest import ARTIFACT_TYPE, read_statements
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import ATTESTATION_REF
from bale.store.local import Store
from exporters.slsa_schema import validate_slsa_v02, validate_slsa_v1
from support import start_registry

pytestmark = [pytest.mark.root]

SPDX = "https://spdx.dev/Document"
BUILDER = "https://ci.example.com/runs/42"


def _target(store: Store, ref: str) -> Descriptor:
    """An image by name, or by its index digest (an image pushed but not named locally)."""
    if ref.startswith("sha256:"):
        digest = Digest.parse(ref)
        return Descriptor(mediatype.OCI_INDEX, digest, len(store.content.read_bytes(digest)))
    return store.resolve(ref)


def statements(root: Path, ref: str) -> dict[str, list[dict[str, Any]]]:
    """The statements of each platform (by the manifest digest they describe)."""
    with Store(root) as store:
        index = store.index(_target(store, ref))
        return {
            att.annotation(ATTESTATION_REF) or "": read_statements(store, att)
            for att in index.attestations()
        }


def platform_of(root: Path, ref: str) -> dict[str, str]:
    with Store(root) as store:
        index = store.index(store.resolve(ref))
        return {str(m.digest): str(m.platform) for m in index.image_manifests()}


def build(
    root: Path, ctx: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return bale(root, "build", "--progress", "plain", *args, ".", cwd=ctx, check=check)


def blobs_holding(root: Path, needle: bytes, top: str) -> dict[str, str]:
    """Every blob of the store (decompressed when it is a layer) holding `needle`, with its
    media type as the image `top` (an index digest) refers to it."""
    found: dict[str, str] = {}
    with Store(root) as store:
        kinds: dict[str, str] = {}
        data = store.content.read_bytes(Digest.parse(top))
        pending = [Descriptor(mediatype.OCI_INDEX, Digest.parse(top), len(data))]
        while pending:
            desc = pending.pop()
            kinds[str(desc.digest)] = desc.media_type
            if mediatype.is_index(desc.media_type):
                pending += store.index(desc).manifests
            elif mediatype.is_manifest(desc.media_type):
                pending += store.manifest(desc).children()
        for blob in store.content.walk():
            data = blob.path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            if needle in data:
                found[str(blob.digest)] = kinds.get(str(blob.digest), "not in the image")
    return found


def test_a_default_build_keeps_a_secret_build_arg_out_of_everything(
    store_root: Path, tmp_path: Path
) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nARG API_TOKEN\nRUN echo built > /built\nCOPY Dockerfile /df\n"
    )
    registry = start_registry(tmp_path / "registry")
    try:
        ref = f"{registry.host}/secret/app:1"
        iid = tmp_path / "iid"
        proc = build(
            store_root,
            ctx,
            "--build-arg",
            f"API_TOKEN={secret}",
            "-t",
            ref,
            "--push",
            "--iidfile",
            str(iid),
        )
        registry_files = [p for p in (tmp_path / "registry" / "data").rglob("*") if p.is_file()]
        pushed = [
            p
            for p in registry_files
            if secret.encode()
            in (
                gzip.decompress(p.read_bytes())
                if p.read_bytes()[:2] == b"\x1f\x8b"
                else p.read_bytes()
            )
        ]
    finally:
        registry.stop()
    # Not in the log.
    assert secret not in proc.stdout + proc.stderr
    # The lint rule warns at every build, as BuildKit's does; the provenance warning that
    # the value is recorded comes only with mode=max.
    assert 'ARG "API_TOKEN"' in proc.stderr and "provenance mode=max records" not in proc.stderr
    # Not in the provenance the push uploaded, nor in any layer: only the image config holds
    # it, in the RUN's history line (`RUN |1 API_TOKEN=… /bin/sh -c …`), as BuildKit writes it.
    holding = blobs_holding(store_root, secret.encode(), iid.read_text())
    assert set(holding.values()) == {mediatype.OCI_CONFIG}, holding
    assert len(pushed) == len(holding) == 1
    found = statements(store_root, iid.read_text())
    assert found and all(
        s[0]["predicate"]["buildDefinition"]["externalParameters"]["request"].get("args") is None
        for s in found.values()
    )
    # Not in a cache record or anything else the store's database holds.
    for db in store_root.glob("**/*.db*"):
        assert secret.encode() not in db.read_bytes(), db
    with sqlite3.connect(store_root / "metadata.db") as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in conn.execute(f"SELECT * FROM {name}"):
                assert secret not in repr(row), name

    # mode=max records it, and says so.
    proc = build(
        store_root,
        ctx,
        "--build-arg",
        f"API_TOKEN={secret}",
        "--provenance",
        "mode=max",
        "-t",
        "secret:max",
    )
    assert "SecretsUsedInArgOrEnv" in proc.stderr and "provenance mode=max records" in proc.stderr
    (provenance,) = [s[0] for s in statements(store_root, "secret:max").values()]
    request = provenance["predicate"]["buildDefinition"]["externalParameters"]["request"]
    assert request["args"]["build-arg:API_TOKEN"] == secret


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """An HTTP server on 127.0.0.1 serving tool.txt; yields its URL and the bytes."""
    directory = tmp_path / "served"
    directory.mkdir()
    data = b"a downloaded tool\n"
    (directory / "tool.txt").write_bytes(data)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tool.txt", data
    finally:
        server.shutdown()
        server.server_close()


def materials(statement: dict[str, Any]) -> dict[str, dict[str, str]]:
    predicate = statement["predicate"]
    if statement["predicateType"] == "https://slsa.dev/provenance/v1":
        items = predicate["buildDefinition"].get("resolvedDependencies", [])
    else:
        items = predicate.get("materials", [])
    return {m["uri"]: m["digest"] for m in items}


@pytest.mark.parametrize("version", ["v1", "v0.2"])
def test_provenance_validates_and_names_each_base_for_the_platform_it_ran_on(
    store_root: Path, tmp_path: Path, served: tuple[str, bytes], version: str
) -> None:
    url, data = served
    ctx = context_dir(tmp_path)
    (ctx / "vendor").mkdir()
    (ctx / "vendor" / "v.txt").write_text("vendored\n")
    (ctx / "Dockerfile").write_text(
        "FROM --platform=$BUILDPLATFORM base:1 AS build\nRUN echo built > /out\n"
        f"FROM base:1\nCOPY --from=build /out /out\nADD {url} /tool.txt\n"
        "COPY --from=vendor v.txt /v.txt\nCOPY --from=again /etc/passwd /passwd\n"
    )
    ref = f"prov-{version}:1"
    build(
        store_root,
        ctx,
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        ref,
        "--build-context",
        "vendor=vendor",
        "--build-context",
        "again=docker-image://base:1",
        "--provenance",
        f"mode=max,version={version},builder-id={BUILDER}",
    )
    validate = validate_slsa_v1 if version == "v1" else validate_slsa_v02
    with Store(store_root) as store:
        base_index = str(store.resolve("base:1").digest).removeprefix("sha256:")
    platforms = platform_of(store_root, ref)
    found = statements(store_root, ref)
    assert sorted(platforms[d] for d in found) == ["linux/amd64", "linux/arm64"]
    for digest, (provenance,) in found.items():
        assert validate(provenance) == [], provenance
        assert provenance["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
        arch = platforms[digest].split("/")[1]
        uris = materials(provenance)
        # The BUILDPLATFORM stage ran on amd64 for both images; the final stage per platform.
        assert uris["pkg:docker/base@1?platform=linux%2Famd64"] == {"sha256": base_index}
        assert uris[f"pkg:docker/base@1?platform=linux%2F{arch}"] == {"sha256": base_index}
        assert uris[url] == {"sha256": hashlib.sha256(data).hexdigest()}
        text = json.dumps(provenance)
        assert '"context:vendor": "local:vendor"' in text
        assert '"context:again": "docker-image://base:1"' in text
        assert BUILDER in text


def sbom_documents(root: Path, ref: str) -> dict[str, list[dict[str, Any]]]:
    return {
        digest: [s["predicate"] for s in found if s["predicateType"] == SPDX]
        for digest, found in statements(root, ref).items()
    }


def pyspdxtools_valid(document: dict[str, Any], path: Path) -> None:
    tool = Path(sys.executable).parent / "pyspdxtools"
    if not tool.exists():
        tool = Path(require_tool("pyspdxtools"))
    path.write_text(json.dumps(document))
    proc = subprocess.run([str(tool), "-i", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def purls(document: dict[str, Any]) -> set[str]:
    return {
        ref["referenceLocator"]
        for p in document["packages"]
        for ref in p.get("externalRefs", [])
        if ref["referenceType"] == "purl"
    }


def test_busybox_image_sbom_validates_with_the_spdx_tools(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN echo hi > /hi\n")
    build(store_root, ctx, "--platform", "linux/amd64,linux/arm64", "--sbom=true", "-t", "bb:1")
    documents = sbom_documents(store_root, "bb:1")
    assert len(documents) == 2
    for n, (document,) in enumerate(documents.values()):
        pyspdxtools_valid(document, tmp_path / f"bb-{n}.spdx.json")
        assert document["packages"][0]["primaryPackagePurpose"] == "CONTAINER"


def test_scan_stage_and_context_add_their_own_documents(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    status = "Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: all\n"
    (ctx / "status").write_text(status)
    site = ctx / "lib" / "python3.11" / "site-packages" / "ctxpkg-1.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: ctxpkg\nVersion: 1.0\n")
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS tools\nARG BUILDKIT_SBOM_SCAN_STAGE=true\n"
        "COPY status /var/lib/dpkg/status\nRUN echo made > /made\n"
        "FROM base:1\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\nCOPY --from=tools /made /made\n"
    )
    build(store_root, ctx, "--sbom=true", "-t", "scan:1")
    ((digest, documents),) = sbom_documents(store_root, "scan:1").items()
    by_name = {d["name"]: d for d in documents}
    assert sorted(by_name) == ["sbom-context", "sbom-tools", "scan:1"]
    assert "pkg:deb/debian/hello@2.10-3?arch=all" in purls(by_name["sbom-tools"])
    assert "pkg:pypi/ctxpkg@1.0" in purls(by_name["sbom-context"])
    assert not any(p.startswith(("pkg:deb", "pkg:pypi")) for p in purls(by_name["scan:1"]))
    for name, document in by_name.items():
        pyspdxtools_valid(document, tmp_path / f"{name}.spdx.json")
        assert document["packages"][0]["versionInfo"] == digest


PYPI_PACKAGES = ("flask", "werkzeug", "jinja2", "itsdangerous", "click", "blinker", "markupsafe")


def _pip_context(ctx: Path) -> None:
    import pip

    shutil.copytree(Path(pip.__file__).parent, ctx / "pip" / "pip")
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    (ctx / "ca.crt").write_bytes(bundle.read_bytes() if bundle.exists() else b"")
    (ctx / "Dockerfile").write_text(
        "FROM bale-examples/debian-python:bookworm\nCOPY pip /opt/pip\nCOPY ca.crt /opt/ca.crt\n"
        "RUN PYTHONPATH=/opt/pip python3 -m pip install --no-cache-dir --break-system-packages "
        "--disable-pip-version-check --root-user-action=ignore"
        + (" --cert /opt/ca.crt" if bundle.exists() else "")
        + " flask\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["pip-install", "copied-site-packages"])
def test_debian_image_with_flask_has_a_valid_sbom_with_purls(
    python_base_root: Path, tmp_path: Path, how: str
) -> None:
    ctx = context_dir(tmp_path)
    if how == "pip-install":
        _pip_context(ctx)
    else:
        # The same distributions, installed beforehand: their metadata as pip leaves it.
        shutil.copytree(TESTS / "exporters" / "fixtures" / "site-packages", ctx / "site")
        (ctx / "Dockerfile").write_text(
            "FROM bale-examples/debian-python:bookworm\n"
            "COPY site /usr/local/lib/python3.11/dist-packages/\n"
        )
    proc = build(python_base_root, ctx, "--sbom=true", "-t", f"flask:{how}", check=False)
    if proc.returncode != 0 and how == "pip-install":
        reason = proc.stderr[-1500:]
        if any(
            word in reason
            for word in (
                "NewConnectionError",
                "Temporary failure",
                "SSLError",
                "No matching distribution",
                "Could not fetch",
            )
        ):
            pytest.skip(f"pip in a RUN step could not reach PyPI:\n{reason}")
    assert proc.returncode == 0, proc.stderr
    ((document,),) = sbom_documents(python_base_root, f"flask:{how}").values()
    pyspdxtools_valid(document, tmp_path / "flask.spdx.json")
    found = purls(document)
    for name in PYPI_PACKAGES:
        assert any(p.startswith(f"pkg:pypi/{name}@") for p in found), (name, sorted(found))
    # The Debian packages too, with their distro.
    assert any(p.startswith("pkg:deb/debian/python3.11-minimal@") for p in found)
    assert any("distro=debian-12" in p for p in found if p.startswith("pkg:deb/"))


def test_both_manifest_shapes_are_taken_by_skopeo_containerd_and_a_registry(
    store_root: Path, tmp_path: Path, registry: str, containerd: list[str]
) -> None:
    skopeo = require_tool("skopeo")
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN echo hi > /hi\n")
    for shape, option in (("artifact", ""), ("legacy", ",oci-artifact=false")):
        ref = f"{registry}/shapes/{shape}:1"
        archive = tmp_path / f"{shape}.tar"
        build(
            store_root,
            ctx,
            "--platform",
            "linux/amd64,linux/arm64",
            "--sbom=true",
            "-t",
            ref,
            "-o",
            f"type=image,push=true{option}",
            "-o",
            f"type=oci,dest={archive}{option}",
        )
        with Store(store_root) as store:
            index = store.index(store.resolve(ref))
            atts = index.attestations()
            manifests = {str(a.digest): store.read_json_blob(a) for a in atts}
        assert len(manifests) == 2
        for digest, raw in manifests.items():
            doc = json.loads(raw)
            if shape == "artifact":
                assert doc["artifactType"] == ARTIFACT_TYPE and "subject" in doc
                assert doc["config"]["mediaType"] == mediatype.OCI_EMPTY
            else:
                assert "subject" not in doc and doc["config"]["mediaType"] == mediatype.OCI_CONFIG
            # The registry serves it back as pushed.
            served = subprocess.run(
                [
                    skopeo,
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    f"docker://{ref.rsplit(':', 1)[0]}@{digest}",
                ],
                capture_output=True,
                check=True,
            ).stdout
            assert served == raw
        # skopeo copies the whole index, attestations included, digests unchanged.
        copied = tmp_path / f"{shape}-copy"
        subprocess.run(
            [
                skopeo,
                "copy",
                "--all",
                "--src-tls-verify=false",
                f"docker://{ref}",
                f"oci:{copied}:x",
            ],
            capture_output=True,
            check=True,
        )
        layout = json.loads((copied / "index.json").read_text())
        top = layout["manifests"][0]["digest"].removeprefix("sha256:")
        copied_index = json.loads((copied / "blobs" / "sha256" / top).read_bytes())
        assert {m["digest"] for m in copied_index["manifests"]} >= set(manifests)
        # containerd imports the archive with every manifest and keeps them as they are.
        subprocess.run(
            [*containerd, "images", "import", "--all-platforms", str(archive)],
            capture_output=True,
            check=True,
        )
        for digest, raw in manifests.items():
            held = subprocess.run(
                [*containerd, "content", "get", digest], capture_output=True, check=True
            ).stdout
            assert held == raw


def test_local_and_tar_outputs_write_the_attestations_beside_the_files(
    store_root: Path, tmp_path: Path
) -> None:
    """As BuildKit's local exporter: provenance.json and sbom*.spdx.json in each platform's
    directory, one statement each whose subjects are that platform's files; buildx's
    default provenance (inline-only) is never written there."""
    ctx = context_dir(tmp_path)
    status = "Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: all\n"
    (ctx / "status").write_text(status)
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nCOPY status /var/lib/dpkg/status\nRUN uname -m > /arch\n"
    )
    out = tmp_path / "out"
    two = ("--platform", "linux/amd64,linux/arm64")
    build(
        store_root,
        ctx,
        *two,
        "--sbom=true",
        "--provenance=mode=max",
        "-o",
        f"type=local,dest={out}",
    )
    for platform in ("linux_amd64", "linux_arm64"):
        directory = out / platform
        provenance = json.loads((directory / "provenance.json").read_text())
        sbom = json.loads((directory / "sbom.spdx.json").read_text())
        assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
        assert sbom["predicateType"] == "https://spdx.dev/Document"
        assert (directory / "provenance.json").stat().st_mode & 0o777 == 0o600
        subjects = {s["name"]: s["digest"]["sha256"] for s in provenance["subject"]}
        assert subjects["arch"] == hashlib.sha256((directory / "arch").read_bytes()).hexdigest()
        assert "var/lib/dpkg/status" in subjects and "provenance.json" not in subjects
        assert sbom["subject"] == provenance["subject"]
        names = {p.get("name") for p in sbom["predicate"]["packages"]}
        assert "hello" in names
    # The default provenance goes into images only.
    plain = tmp_path / "plain"
    build(store_root, ctx, "--platform", "linux/amd64", "-o", f"type=local,dest={plain}")
    assert (plain / "arch").is_file() and not (plain / "provenance.json").exists()
    # A tar output carries the same files; one platform: at the top.
    tar = tmp_path / "out.tar"
    build(
        store_root,
        ctx,
        "--platform",
        "linux/arm64",
        "--provenance=true",
        "-o",
        f"type=tar,dest={tar}",
    )
    listing = subprocess.run(
        ["tar", "-tf", str(tar)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "provenance.json" in listing and "arch" in listing
