"""BuildKit's named-context integration tests (frontend/dockerfile/dockerfile_namedcontext_test.go),
transcribed with busybox images made here: a `--build-context NAME=...` replaces the stage or
the base image called NAME, whatever it is (an image, scratch, a directory, an OCI layout)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from buildhelp import bale, context_dir, local_output

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def alt_image(store_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Stands for upstream's alpine: a marker file /etc/alpine-release, and custom ENVs."""
    ctx = tmp_path_factory.mktemp("alt")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nRUN echo 3.20 > /etc/alpine-release\n"
        "ENV PATH=/foobar:$PATH\nENV FOOBAR=foobar\n"
    )
    bale(store_root, "build", "--progress", "quiet", "-t", "alt:1", ".", cwd=ctx)
    return "alt:1"


def test_named_image_context(store_root: Path, tmp_path: Path, alt_image: str) -> None:
    """testNamedImageContext: FROM busybox takes the named image, with its config; a context
    named as a stage replaces that stage (and what it was based on) entirely."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS base\nRUN cat /etc/alpine-release > /out\n"
        "RUN env | grep PATH > /env_path\nRUN env | grep FOOBAR > /env_foobar\n"
        "FROM scratch\nCOPY --from=base /out /\nCOPY --from=base /env_path /\n"
        "COPY --from=base /env_foobar /\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--build-context", f"busybox=docker-image://{alt_image}")
    assert (out / "out").read_text() == "3.20\n"
    assert (out / "env_foobar").read_text().strip() == "FOOBAR=foobar"
    assert "/foobar:" in (out / "env_path").read_text()

    (ctx / "Dockerfile").write_text(
        "FROM busybox AS parent\nFROM parent AS base\nRUN echo base > /out\n"
        "FROM base\nRUN [ -f /etc/alpine-release ]\nRUN [ ! -f /out ]\n"
    )
    local_output(
        store_root, ctx, tmp_path / "out2", "--build-context", f"base=docker-image://{alt_image}"
    )


def test_named_image_context_scratch(store_root: Path, tmp_path: Path) -> None:
    """testNamedImageContextScratch: docker-image://scratch is the empty image, not a pull."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM busybox AS build\nCOPY <<EOF /out\nhello world!\nEOF\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--build-context", "busybox=docker-image://scratch")
    assert sorted(p.name for p in out.iterdir()) == ["out"]
    assert (out / "out").read_text() == "hello world!\n"
    # Also as an image, with the provenance buildx attaches by default.
    bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--build-context",
        "busybox=docker-image://scratch",
        "-t",
        "fromscratch:1",
        ".",
        cwd=ctx,
    )


def test_named_local_context(store_root: Path, tmp_path: Path) -> None:
    """testNamedLocalContext: a directory replaces the stage `base`, its .dockerignore kept."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS base\nRUN cat /etc/alpine-release > /out\n"
        "FROM scratch\nCOPY --from=base /o* /\n"
    )
    basedir = tmp_path / "basedir"
    basedir.mkdir()
    (basedir / "out").write_text("dummy-result")
    (basedir / "out2").write_text("dummy-result")
    (basedir / ".dockerignore").write_text("out2\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--build-context", f"base={basedir}")
    assert (out / "out").read_text() == "dummy-result"
    assert not (out / "out2").exists()


def test_named_oci_layout_context(store_root: Path, tmp_path: Path) -> None:
    """testNamedOCILayoutContext: an oci-layout:// context replaces both a stage and a base,
    by digest, with the layout image's config (ENV foo=bar)."""
    first = tmp_path / "first"
    first.mkdir()
    (first / "Dockerfile").write_text(
        'FROM base:1\nWORKDIR /test\nRUN sh -c "echo -n first > out"\n'
        'RUN sh -c "echo -n second > out2"\nENV foo=bar\n'
    )
    archive = tmp_path / "oci.tar"
    bale(
        store_root, "build", "--progress", "quiet", "-o", f"type=oci,dest={archive}", ".", cwd=first
    )
    layout = tmp_path / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1
    digest = index["manifests"][0]["digest"]

    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS base\nRUN cat /etc/alpine-release > out\n\n"
        "FROM foo AS imported\nRUN echo -n $foo > outfoo\n\n"
        "FROM scratch\nCOPY --from=base /test/o* /\nCOPY --from=imported /test/outfoo /\n"
    )
    out = tmp_path / "out"
    local_output(
        store_root,
        ctx,
        out,
        "--build-context",
        f"base=oci-layout://{layout}@{digest}",
        "--build-context",
        f"foo=oci-layout://{layout}@{digest}",
    )
    assert (out / "out").read_text() == "first"
    assert (out / "out2").read_text() == "second"
    assert (out / "outfoo").read_text() == "bar"


def test_named_image_context_timestamps(store_root: Path, tmp_path: Path, alt_image: str) -> None:
    """testNamedImageContextTimestamps: an image built on a named context is newer than it."""
    from bale.store.local import Store

    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM alpine\nRUN echo foo >> /test\n")
    bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--build-context",
        f"alpine=docker-image://{alt_image}",
        "-t",
        "derived:1",
        ".",
        cwd=ctx,
    )

    def created(ref: str) -> str:
        with Store(store_root) as store:
            manifest = store.manifest(store.select_platform(store.resolve(ref), None))
            return str(json.loads(store.config(manifest.config).encode())["created"])

    assert created("derived:1") > created(alt_image)
