"""Scanners over real package databases and binaries, and SPDX 2.3 documents that the
SPDX project's own tools validate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sbomhelp import FIXTURES, F, Layers, debian_layer, elf_with_pointer_buildinfo, site_packages
from spdx_tools.spdx.parser.json import json_parser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from bale.exporters import intoto
from bale.exporters.sbom import (
    CORE,
    DirectoryTree,
    LayeredTree,
    Package,
    golang,
    sbom_statement,
    scan,
    scan_targets,
    spdx_document,
)
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.platform import Platform

MANIFEST = Descriptor(
    "application/vnd.oci.image.manifest.v1+json", Digest.of(b"image manifest"), 900
)
AMD64 = Platform.parse("linux/amd64")
ALPINE_OS_RELEASE = (
    b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
)
APK_DB = b"""C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
F:lib
R:ld-musl-x86_64.so.1

C:Q1def=
P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
o:busybox

C:Q1ghi=
P:ca-certificates-bundle
V:20230506-r0
A:x86_64
L:MPL-2.0 AND MIT
"""


def purls(result_packages: tuple[Package, ...], kind: str) -> set[str]:
    return {p.purl for p in result_packages if p.kind == kind}


def validate_spdx(document: dict[str, Any], tmp_path: Path) -> list[str]:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(document))
    parsed = json_parser.parse_from_file(str(path))
    return [m.validation_message for m in validate_full_spdx_document(parsed)]


def test_debian_packages_with_distro_arch_and_dep5_licences() -> None:
    tree = LayeredTree(Layers().add(debian_layer()).openers(), layer_ids=["sha256:" + "1" * 64])
    result = scan(tree)
    assert result.distro.qualifier == "debian-12"
    debs = {p.name: p for p in result.packages if p.kind == "deb"}
    assert sorted(debs) == [
        "base-files",
        "bash",
        "coreutils",
        "libc6",
        "libssl3",
        "tzdata",
        "zlib1g",
    ]
    assert debs["bash"].purl == "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12"
    assert (
        debs["tzdata"].purl == "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all&distro=debian-12"
    )
    assert (
        debs["zlib1g"].purl == "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12"
    )
    assert "GPL-3+" in debs["bash"].licenses and debs["zlib1g"].licenses == ("Zlib",)
    assert debs["libc6"].licenses == ()  # a free-form copyright file states none we can read
    assert debs["bash"].location == "/var/lib/dpkg/status"
    assert debs["bash"].layer == "sha256:" + "1" * 64


def test_distroless_status_d_files_count_as_installed() -> None:
    status = (FIXTURES / "dpkg" / "status").read_bytes().split(b"\n\n")
    bash = next(s for s in status if s.startswith(b"Package: bash\n"))
    bash = b"\n".join(line for line in bash.split(b"\n") if not line.startswith(b"Status:"))
    layers = Layers().add(
        [
            F("var/lib/dpkg/status.d/bash", bash + b"\n"),
            F(
                "var/lib/dpkg/status.d/bash.md5sums",
                b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/bash\n",
            ),
            F("etc/os-release", (FIXTURES / "dpkg" / "os-release").read_bytes()),
        ]
    )
    assert purls(scan(LayeredTree(layers.openers())).packages, "deb") == {
        "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12"
    }


def test_flask_and_its_dependencies_from_site_packages() -> None:
    egg = F(
        "usr/lib/python3/dist-packages/Foo_Bar.Baz-2.0.egg-info/PKG-INFO",
        b"Metadata-Version: 1.1\nName: Foo_Bar.Baz\nVersion: 2.0\nLicense: GPLv2+\n",
    )
    venv = F(
        "opt/venv/lib/python3.12/site-packages/six-1.16.0.dist-info/METADATA",
        b"Name: six\nVersion: 1.16.0\nLicense: MIT\n",
    )
    layers = Layers().add([*site_packages(), egg, venv])
    result = scan(LayeredTree(layers.openers()))
    found = {p.name: p for p in result.packages if p.kind == "python"}
    versions = dict(
        d.name.removesuffix(".dist-info").split("-") for d in (FIXTURES / "site-packages").iterdir()
    )
    assert set(versions) == {
        "flask",
        "werkzeug",
        "jinja2",
        "itsdangerous",
        "click",
        "blinker",
        "markupsafe",
    }
    for name, version in versions.items():
        assert f"pkg:pypi/{name}@{version}" in purls(result.packages, "python")
    # Names are normalised in the purl (lowercase, `_` → `-`) and kept in the package.
    assert found["MarkupSafe"].purl == f"pkg:pypi/markupsafe@{versions['markupsafe']}"
    assert found["Foo_Bar.Baz"].purl == "pkg:pypi/foo-bar.baz@2.0"
    assert (
        found["six"].location
        == "/opt/venv/lib/python3.12/site-packages/six-1.16.0.dist-info/METADATA"
    )
    assert found["Flask"].licenses == ("BSD-3-Clause",)  # License-Expression
    assert found["blinker"].licenses == ("MIT",)  # from the trove classifier
    assert found["Foo_Bar.Baz"].licenses == ("GPLv2+",)  # free text, kept for a LicenseRef


def test_npm_installed_trees_scoped_packages_and_lockfiles() -> None:
    def pkg(name: str, version: str, extra: str = "") -> bytes:
        return f'{{"name": "{name}", "version": "{version}"{extra}}}'.encode()

    lock = {
        "name": "app",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app", "version": "1.0.0"},
            "node_modules/express": {"version": "4.19.2", "license": "MIT"},
            "node_modules/ms": {"version": "2.1.3", "license": "MIT"},
            "node_modules/jest": {"version": "29.7.0", "dev": True},
            "node_modules/linked": {"link": True, "resolved": "../linked"},
        },
    }
    layers = Layers().add(
        [
            F("app/package-lock.json", json.dumps(lock).encode()),
            F(
                "app/node_modules/express/package.json",
                pkg("express", "4.19.2", ', "license": "MIT"'),
            ),
            F(
                "app/node_modules/express/lib/package.json",
                b'{"name": "not-a-package", "version": "0"}',
            ),
            F(
                "app/node_modules/express/node_modules/debug/package.json",
                pkg("debug", "2.6.9", ', "license": {"type": "MIT"}'),
            ),
            F(
                "app/node_modules/@babel/core/package.json",
                pkg("@babel/core", "7.24.0", ', "licenses": [{"type": "MIT"}]'),
            ),
            F(
                "usr/local/lib/node_modules/npm/package.json",
                pkg("npm", "10.5.0", ', "license": "Artistic-2.0"'),
            ),
        ]
    )
    result = scan(LayeredTree(layers.openers()))
    assert purls(result.packages, "npm") == {
        "pkg:npm/express@4.19.2",
        "pkg:npm/debug@2.6.9",
        "pkg:npm/%40babel/core@7.24.0",
        "pkg:npm/npm@10.5.0",
        "pkg:npm/ms@2.1.3",  # locked, not installed, not a dev dependency
    }
    by_name = {p.name: p for p in result.packages}
    assert by_name["@babel/core"].licenses == ("MIT",)
    assert by_name["ms"].location == "/app/package-lock.json"
    assert by_name["express"].location == "/app/node_modules/express/package.json"


def test_alpine_apk_database() -> None:
    layers = Layers().add(
        [F("etc/os-release", ALPINE_OS_RELEASE), F("lib/apk/db/installed", APK_DB)]
    )
    result = scan(LayeredTree(layers.openers()))
    assert purls(result.packages, "apk") == {
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1",
        "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1",
        "pkg:apk/alpine/ca-certificates-bundle@20230506-r0?arch=x86_64&distro=alpine-3.19.1",
    }


def test_a_whiteout_hides_a_package_database() -> None:
    layers = Layers().add(debian_layer()).add([F("var/lib/dpkg/.wh.status")])
    assert purls(scan(LayeredTree(layers.openers())).packages, "deb") == set()
    opaque = (
        Layers()
        .add(site_packages())
        .add([F("usr/local/lib/python3.11/site-packages/.wh..wh..opq")])
    )
    assert purls(scan(LayeredTree(opaque.openers())).packages, "python") == set()


OLD_MODINFO = (
    "path\texample.com/old/cmd\n"
    "mod\texample.com/old\tv0.1.0\th1:abc=\n"
    "dep\tgolang.org/x/text\tv0.3.7\th1:xyz=\n"
    "=>\tgolang.org/x/text\tv0.3.8\th1:qqq=\n"
    "dep\tgithub.com/BurntSushi/toml\tv1.2.0\th1:t=\n"
)


@pytest.mark.parametrize(
    ("big_endian", "wide"), [(False, True), (True, True), (False, False), (True, False)]
)
def test_go_build_info_in_the_pointer_format_before_go_1_18(
    big_endian: bool, wide: bool, tmp_path: Path
) -> None:
    binary = elf_with_pointer_buildinfo("go1.16.15", OLD_MODINFO, big_endian=big_endian, wide=wide)
    info = golang.read_buildinfo(golang.BytesAccess(binary))
    assert info is not None
    assert (info.go_version, info.path) == ("go1.16.15", "example.com/old/cmd")
    assert [p.purl for p in golang.packages(info, location="/x")] == [
        "pkg:golang/example.com/old@v0.1.0",
        "pkg:golang/golang.org/x/text@v0.3.8",  # the replacement is what was compiled
        "pkg:golang/github.com/BurntSushi/toml@v1.2.0",
        "pkg:golang/stdlib@1.16.15",
    ]
    go = shutil.which("go")
    if go is not None:
        # Go's own debug/buildinfo agrees on the hand-made binary.
        exe = tmp_path / "old"
        exe.write_bytes(binary)
        exe.chmod(0o755)
        shown = subprocess.run(
            [go, "version", "-m", str(exe)], capture_output=True, text=True, check=True
        ).stdout
        assert "\tmod\texample.com/old\tv0.1.0\th1:abc=\n" in shown
        assert "\t=>\tgolang.org/x/text\tv0.3.8\th1:qqq=\n" in shown


def build_go_module(tmp_path: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain (apt-get install golang-go) to build a module binary")
    src = tmp_path / "src"
    (src / "vendor" / "example.com" / "greet").mkdir(parents=True)
    (src / "go.mod").write_text(
        "module example.com/app\n\ngo 1.19\n\nrequire example.com/greet v1.2.3\n"
    )
    (src / "main.go").write_text(
        'package main\n\nimport "example.com/greet"\n\nfunc main() { println(greet.Hello()) }\n'
    )
    (src / "vendor" / "example.com" / "greet" / "greet.go").write_text(
        'package greet\n\nfunc Hello() string { return "hi" }\n'
    )
    (src / "vendor" / "modules.txt").write_text(
        "# example.com/greet v1.2.3\n## explicit\nexample.com/greet\n"
    )
    env = {
        **os.environ,
        "GOFLAGS": "-mod=vendor",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
        "GOCACHE": str(tmp_path / "cache"),
        "GOPATH": str(tmp_path / "gopath"),
    }
    subprocess.run(
        [go, "build", "-o", str(tmp_path / "app"), "."],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
    )
    return tmp_path / "app"


def test_go_module_binary_in_an_image_layer(tmp_path: Path) -> None:
    binary = build_go_module(tmp_path).read_bytes()
    go_version = subprocess.run(
        ["go", "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()
    layers = Layers().add(
        [
            F("usr/local/bin/app", binary, mode=0o755),
            F("usr/share/app/app.copy", binary, mode=0o644),  # not executable: not a program
            F("usr/local/bin/script", b"#!/bin/sh\necho hi\n" * 100, mode=0o755),
        ]
    )
    result = scan(LayeredTree(layers.openers()))
    assert purls(result.packages, "go-module") == {
        "pkg:golang/example.com/app",
        "pkg:golang/example.com/greet@v1.2.3",
        f"pkg:golang/stdlib@{go_version.removeprefix('go')}",
    }
    assert {p.location for p in result.packages} == {"/usr/local/bin/app"}


def test_a_go_program_debian_ships_reads_its_build_info() -> None:
    path = next(
        (
            Path(p)
            for p in ("/usr/sbin/runc", "/usr/bin/docker-registry", "/usr/bin/skopeo")
            if Path(p).exists()
        ),
        None,
    )
    if path is None:
        pytest.skip("none of runc, docker-registry, skopeo installed (scripts/setup-host.sh)")
    info = golang.read_buildinfo(golang.BytesAccess(path.read_bytes()))
    assert info is not None and info.go_version.startswith("go1.")
    assert info.path.startswith("github.com/")
    assert golang.read_buildinfo(golang.BytesAccess(Path("/bin/sh").resolve().read_bytes())) is None


def image_packages() -> tuple[Package, ...]:
    layers = (
        Layers()
        .add(debian_layer())
        .add(site_packages())
        .add(
            [
                F("etc/os-release", kind="symlink", link="../usr/lib/os-release"),
                F(
                    "app/node_modules/@scope/x/package.json",
                    b'{"name":"@scope/x","version":"1.0.0","license":"(MIT OR Apache-2.0)"}',
                ),
            ]
        )
    )
    return scan(
        LayeredTree(
            layers.openers(),
            layer_ids=["sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64],
        )
    ).packages


def test_the_spdx_document_validates_with_spdx_tools(tmp_path: Path) -> None:
    packages = image_packages()
    doc = spdx_document(
        packages, name="app:1", subject=MANIFEST, subject_names=["app:1"], platform=AMD64
    )
    assert validate_spdx(doc, tmp_path) == []
    root = doc["packages"][0]
    assert root["primaryPackagePurpose"] == "CONTAINER"
    assert root["externalRefs"][0]["referenceLocator"] == "pkg:docker/app@1?platform=linux%2Famd64"
    describes = [r for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES"]
    assert describes == [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": root["SPDXID"],
        }
    ]
    contains = {
        r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "CONTAINS"
    }
    assert contains == {p["SPDXID"] for p in doc["packages"][1:]}
    assert len(doc["packages"]) == len(packages) + 1
    refs = {p["externalRefs"][0]["referenceLocator"]: p for p in doc["packages"][1:]}
    assert set(refs) == {p.purl for p in packages}
    assert all(
        p["externalRefs"][0]["referenceCategory"] == "PACKAGE-MANAGER" for p in doc["packages"]
    )
    bash = refs["pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12"]
    assert (
        "GPL-3.0-or-later" in bash["licenseDeclared"] and "LicenseRef-" in bash["licenseDeclared"]
    )
    assert bash["comment"] == "layerID: sha256:" + "a" * 64
    assert bash["sourceInfo"] == "acquired package info from dpkg status file: /var/lib/dpkg/status"
    assert refs["pkg:npm/%40scope/x@1.0.0"]["licenseDeclared"] == "MIT OR Apache-2.0"
    libc = next(p for p in doc["packages"] if p["name"] == "libc6")
    assert libc["licenseDeclared"] == "NOASSERTION"
    assert all(p["licenseConcluded"] == "NOASSERTION" for p in doc["packages"])


def test_the_document_is_deterministic(tmp_path: Path) -> None:
    packages = image_packages()
    first = spdx_document(
        packages,
        name="app:1",
        subject=MANIFEST,
        subject_names=["app:1"],
        platform=AMD64,
        epoch=1_700_000_000,
    )
    again = spdx_document(
        tuple(reversed(packages)),
        name="app:1",
        subject=MANIFEST,
        subject_names=["app:1"],
        platform=AMD64,
        epoch=1_700_000_000,
    )
    assert intoto.statement_bytes(first) == intoto.statement_bytes(again)
    assert first["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    other = spdx_document(
        packages[1:], name="app:1", subject=MANIFEST, subject_names=["app:1"], platform=AMD64
    )
    assert other["documentNamespace"] != first["documentNamespace"]
    assert other["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
    assert validate_spdx(other, tmp_path) == []


def test_an_empty_scan_is_still_a_valid_document(tmp_path: Path) -> None:
    doc = spdx_document((), name="scratch", subject=MANIFEST)
    assert validate_spdx(doc, tmp_path) == []
    assert len(doc["packages"]) == 1


def test_the_statement_wraps_the_document_as_buildkit_does() -> None:
    doc = spdx_document(
        image_packages(), name="app:1", subject=MANIFEST, subject_names=["app:1"], platform=AMD64
    )
    statement = sbom_statement(doc, subject=MANIFEST, subject_names=["app:1"], platform=AMD64)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://spdx.dev/Document"
    assert statement["subject"] == [
        {
            "name": "pkg:docker/app@1?platform=linux%2Famd64",
            "digest": {"sha256": MANIFEST.digest.hex},
        }
    ]
    assert statement["predicate"] == doc
    unnamed = sbom_statement(doc, subject=MANIFEST, subject_names=[], platform=AMD64)
    assert unnamed["subject"][0]["name"] == "_"


def test_extra_targets_are_scanned_as_buildkit_names_them(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    lock = {"lockfileVersion": 2, "packages": {"node_modules/left-pad": {"version": "1.3.0"}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    build_stage = LayeredTree(Layers().add(site_packages()).openers())
    image = LayeredTree(Layers().add(debian_layer()).openers())
    results = scan_targets(image, {"context": DirectoryTree(tmp_path), "build": build_stage})
    assert list(results) == [CORE, "sbom-build", "sbom-context"]
    assert purls(results["sbom-context"].packages, "npm") == {"pkg:npm/left-pad@1.3.0"}
    assert "pkg:pypi/flask@" in " ".join(purls(results["sbom-build"].packages, "python"))
    assert purls(results[CORE].packages, "python") == set()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=4096))
def test_no_file_makes_the_go_reader_raise(noise: bytes, cut: int) -> None:
    good = elf_with_pointer_buildinfo("go1.16.15", OLD_MODINFO)
    for data in (b"\x7fELF" + noise, good[:cut] + noise, good[:cut], noise + good):
        info = golang.read_buildinfo(golang.BytesAccess(data))
        assert info is None or isinstance(info.go_version, str)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_no_bytes_make_a_package_parser_raise(data: bytes) -> None:
    from bale.exporters.sbom import apk, dpkg, npm, osrelease, python

    distro = osrelease.parse(data)
    dpkg.parse_status(data, distro=distro, location="/s")
    dpkg.copyright_licenses(b"Format: copyright-format\n" + data)
    apk.parse_installed(data, distro=distro, location="/a")
    python.parse_metadata(data, location="/m")
    npm.parse_package_json(data, location="/p")
    npm.parse_lockfile(b'{"packages": {"node_modules/' + data + b'": {}}}', location="/l")
    npm.parse_package_json(b"[" * 100_000, location="/deep")


@pytest.mark.parametrize(
    ("statement", "expression"),
    [
        # Statements from Debian bookworm's copyright files on which license-expression
        # 30.4 fails inside its own error path: each is still a declared licence.
        ("MIT/X11", "LicenseRef-MIT-X11"),
        ("ISC and/or LGPL-2.1+", "LicenseRef-ISC-and-or-LGPL-2.1"),
        ("GPL-1+ or Artistic, and Expat", "GPL-1.0-or-later OR (Artistic-1.0 AND MIT)"),
        ("GPL-1+ or Artistic, and Unicode", None),
    ],
)
def test_licence_statements_the_library_chokes_on(
    statement: str, expression: str | None, tmp_path: Path
) -> None:
    package = Package("perl", "5.36", "deb", "pkg:deb/debian/perl@5.36", licenses=(statement,))
    document = spdx_document([package], name="perl")
    declared_ = document["packages"][1]["licenseDeclared"]
    if expression is not None:
        assert declared_ == expression
    assert validate_spdx(document, tmp_path) == []
