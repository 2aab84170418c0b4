"""Reproducible builds end to end: two fresh stores, each with the bases imported under
SOURCE_DATE_EPOCH, give a Debian-based two-platform image (RUN and COPY, attestations
included) the same index digest; `bale build --verify-reproducible` says so, or names the
file that differs."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildhelp import PYTHON_BASE, TWO, bale, context_dir

from support import CACHE

pytestmark = [pytest.mark.root]

EPOCH = "1704067200"  # 2024-01-01T00:00:00Z


@pytest.mark.slow
def test_two_fresh_stores_give_the_same_index_digest(
    python_base_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # python_base_root made the Debian rootfs tarballs; each fresh store imports its own.
    del python_base_root
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    ctx = context_dir(tmp_path)
    (ctx / "app.txt").write_text("the app\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {PYTHON_BASE}\n"
        "RUN echo hello > /hello && mkdir -p /srv/app && cp /etc/os-release /srv/app/\n"
        "COPY app.txt /srv/app/\nRUN ls /srv/app > /srv/listing\n"
    )
    digests = []
    for name in ("first", "second"):
        root = tmp_path / name
        for platform in TWO:
            arch = platform.split("/")[1]
            tarball = CACHE / "rootfs" / f"bookworm-python-{arch}.tar"
            bale(root, "import", "--platform", platform, str(tarball), PYTHON_BASE)
        iid = tmp_path / f"{name}.iid"
        bale(
            root,
            "build",
            "--progress",
            "plain",
            "--platform",
            ",".join(TWO),
            "--sbom=true",
            "-t",
            "repro:1",
            "--iidfile",
            str(iid),
            ".",
            cwd=ctx,
        )
        digests.append(iid.read_text())
    assert digests[0] == digests[1]
    # Something did change with the epoch: the digest is the epoch's, not a constant.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(EPOCH) + 86400))
    iid = tmp_path / "later.iid"
    bale(
        tmp_path / "first",
        "build",
        "--progress",
        "quiet",
        "--platform",
        ",".join(TWO),
        "--sbom=true",
        "--iidfile",
        str(iid),
        ".",
        cwd=ctx,
    )
    assert iid.read_text() != digests[0]


def test_verify_reproducible_passes_and_names_a_planted_difference(
    store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "conf.txt").write_text("conf\n")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nRUN echo built > /built && mkdir -p /srv\nCOPY conf.txt /srv/\n"
    )
    no_epoch = bale(store_root, "build", "--verify-reproducible", ".", cwd=ctx, check=False)
    assert no_epoch.returncode == 1
    assert "--verify-reproducible needs SOURCE_DATE_EPOCH" in no_epoch.stderr

    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    ok = bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--platform",
        ",".join(TWO),
        "--verify-reproducible",
        ".",
        cwd=ctx,
    )
    assert ok.stdout.startswith("reproducible: sha256:")

    (ctx / "Dockerfile").write_text(
        "FROM base:1\nRUN echo built > /built && mkdir -p /srv\nCOPY conf.txt /srv/\n"
        "RUN cat /proc/sys/kernel/random/uuid > /srv/planted\n"
    )
    bad = bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--verify-reproducible",
        ".",
        cwd=ctx,
        check=False,
    )
    assert bad.returncode == 1, bad.stderr
    assert "the build is not reproducible" in bad.stderr
    assert "linux/amd64 layer" in bad.stderr and "cat /proc/sys/kernel/random/uuid" in bad.stderr
    assert "/srv/planted: content differs" in bad.stderr
    # The fresh stores are gone, and the store itself got no image.
    assert not any((store_root / "tmp").iterdir())
    images = bale(store_root, "images", "--format", "json").stdout
    assert '"Repository":"<none>"' not in images.replace(" ", "")


def test_verify_reproducible_exports_nothing(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\n")
    proc = bale(
        store_root,
        "build",
        "--verify-reproducible",
        "--push",
        "-t",
        "x:1",
        ".",
        cwd=ctx,
        check=False,
    )
    assert proc.returncode == 1
    assert "it exports nothing" in proc.stderr


def test_a_cached_rebuild_keeps_the_index_unless_max_provenance_times_it(
    store_root: Path, tmp_path: Path
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN echo once > /once\n")

    def index(*args: str) -> str:
        iid = tmp_path / "iid"
        bale(store_root, "build", "--progress", "quiet", "--iidfile", str(iid), *args, ".", cwd=ctx)
        return iid.read_text()

    # The default (min) provenance carries no build times: the index digest is stable.
    assert index() == index()
    steady = "--provenance=mode=max,reproducible=true"
    assert index(steady) == index(steady)
    # mode=max records when the build ran and a random invocation id, as BuildKit does.
    timed = "--provenance=mode=max"
    assert index(timed) != index(timed)
