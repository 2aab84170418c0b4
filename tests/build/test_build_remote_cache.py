"""The build cache travels: --cache-to / --cache-from through a real docker-registry and an
OCI layout directory, into fresh stores, merged across runners, with cache mounts, keys that
survive another checkout, miss reasons, and caches that cannot be read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from buildhelp import bale

DOCKERFILE = """\
FROM base:1
ARG TOUCH=1
COPY app/ /app/
RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs \\
    echo "$TOUCH" > /touched; uname -m > /arch; \\
    [ -f /var/cache/pkgs/first ] || date > /var/cache/pkgs/first; \\
    cat /var/cache/pkgs/first > /seen
COPY notes.txt /notes.txt
RUN wc -c /app/main.py > /size
"""


def _context(tmp_path: Path, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "main.py").write_text("print('hello')\n")
    (ctx / "app" / "util.py").write_text("X = 1\n")
    (ctx / "notes.txt").write_text("notes\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


@pytest.fixture
def fresh(store_root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """fresh(name) -> a new empty store holding only base:1, loaded from the same archive
    (so every store has the very same base image, as runners pulling one tag have)."""
    archive = tmp_path / "base.tar"
    bale(store_root, "save", "-o", str(archive), "base:1")

    def make(name: str) -> Path:
        root = tmp_path / name
        bale(root, "load", "-i", str(archive))
        return root

    return make


def _build(root: Path, ctx: Path, *args: str, check: bool = True) -> tuple[str, str]:
    """(plain progress, image id) of a two-platform build of ctx."""
    iid = ctx.parent / f"iid-{root.name}"
    proc = bale(
        root,
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "--iidfile",
        str(iid),
        "-t",
        "app:1",
        *args,
        str(ctx),
        check=check,
    )
    return proc.stderr, iid.read_text() if iid.exists() else ""


def _executed(progress: str) -> list[str]:
    """The steps that ran (every other step printed CACHED)."""
    names: dict[str, str] = {}
    ran = []
    for line in progress.splitlines():
        number, _, rest = line.partition(" ")
        if rest.startswith("["):
            names[number] = rest
        elif rest.startswith("DONE") and "FROM" not in names.get(number, "FROM"):
            ran.append(names[number])
    return ran


@pytest.mark.root
def test_registry_cache_rebuilds_nothing_in_a_fresh_store(
    fresh,
    registry: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    ref = f"{registry}/cache/app:main"
    cold, iid_a = _build(fresh("a"), ctx, "--cache-to", f"type=registry,ref={ref},mode=max")
    assert len(_executed(cold)) == 8  # 4 steps per platform
    warm, iid_b = _build(fresh("b"), ctx, "--cache-from", f"type=registry,ref={ref}")
    assert _executed(warm) == []
    assert iid_b == iid_a  # the same index digest
    # The cache is ordinary OCI content: an image manifest with bale's artifact type.
    manifest = _registry_json(registry, "cache/app", "main")
    assert manifest["artifactType"] == "application/vnd.bale.cache.v1"
    assert manifest["config"]["mediaType"] == "application/vnd.bale.cache.config.v1+json"


def _registry_json(registry: str, repo: str, tag: str) -> dict[str, object]:
    import httpx

    response = httpx.get(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.root
def test_local_cache_rebuilds_nothing_and_restores_cache_mounts(
    fresh,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    dest = tmp_path / "cache-dir"
    _build(fresh("a"), ctx, "--cache-to", f"type=local,dest={dest},mode=max,cache-mounts=pkgs")
    assert (dest / "index.json").is_file()
    warm, _ = _build(fresh("b"), ctx, "--cache-from", f"type=local,src={dest}")
    assert _executed(warm) == []
    # A step that must run again on a fresh store finds what the first runner left in the
    # cache mount (moby/buildkit#1474).
    first = _mount_marker(
        fresh("c"), ctx, "--cache-from", f"type=local,src={dest}", "--build-arg", "TOUCH=2"
    )
    root_a_out = tmp_path / "out-a"
    bale(
        fresh("d"),
        "build",
        "--progress",
        "plain",
        "-o",
        f"type=local,dest={root_a_out}",
        "--cache-from",
        f"type=local,src={dest}",
        str(ctx),
    )
    assert first and first == (root_a_out / "seen").read_text()


def _mount_marker(root: Path, ctx: Path, *args: str) -> str:
    out = ctx.parent / f"out-{root.name}"
    proc = bale(
        root, "build", "--progress", "plain", "-o", f"type=local,dest={out}", *args, str(ctx)
    )
    assert "cache miss: variable TOUCH changed" in proc.stderr or "cache miss" in proc.stderr
    return (out / "seen").read_text()


@pytest.mark.root
def test_two_runners_one_platform_each_leave_one_cache_with_both(
    fresh,
    registry: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    ref = f"{registry}/cache/merged:ci"
    for name, platform in (("amd", "linux/amd64"), ("arm", "linux/arm64")):
        bale(
            fresh(name),
            "build",
            "--progress",
            "plain",
            "--platform",
            platform,
            "-t",
            "app:1",
            "--cache-to",
            f"type=registry,ref={ref},mode=max",
            str(ctx),
        )
    warm, _ = _build(fresh("third"), ctx, "--cache-from", ref)  # a bare ref: registry
    assert _executed(warm) == []


@pytest.mark.root
def test_another_checkout_with_other_owners_and_mtimes_hits(
    fresh,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    dest = tmp_path / "cache-dir"
    _build(fresh("a"), ctx, "--cache-to", f"type=local,dest={dest},mode=max")
    other = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(ctx, other)  # new inodes, a new absolute path
    for path in [other, *other.rglob("*")]:
        os.lchown(path, 4321, 4321)
        os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
    warm, _ = _build(fresh("b"), other, "--cache-from", f"type=local,src={dest}")
    assert _executed(warm) == []


@pytest.mark.root
def test_editing_one_copied_file_names_it_and_runs_only_what_follows(
    fresh,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    root = fresh("a")
    _build(root, ctx)
    (ctx / "notes.txt").write_text("edited\n")
    progress, _ = _build(root, ctx)
    assert "cache miss: file notes.txt changed" in progress
    ran = _executed(progress)
    assert len(ran) == 4 and all("COPY notes.txt" in r or "wc -c" in r for r in ran)


@pytest.mark.root
@pytest.mark.parametrize("kind", ["missing", "unreachable", "corrupt-local", "not-a-cache"])
def test_a_cache_that_cannot_be_read_is_a_warning_and_a_cold_build(
    fresh,
    registry: str,
    store_root: Path,
    tmp_path: Path,
    kind: str,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    if kind == "missing":
        source = f"type=registry,ref={registry}/cache/none:here"
    elif kind == "unreachable":
        source = "type=registry,ref=127.0.0.1:9/cache/x:y"
    elif kind == "corrupt-local":
        bad = tmp_path / "bad-cache"
        bad.mkdir()
        (bad / "index.json").write_text('{"manifests": [{"mediaType": 5}]')
        source = f"type=local,src={bad}"
    else:
        bale(store_root, "tag", "base:1", f"{registry}/plain/image:1")
        bale(store_root, "push", f"{registry}/plain/image:1")
        source = f"type=registry,ref={registry}/plain/image:1"
    progress, iid = _build(fresh("a"), ctx, "--cache-from", source)
    assert iid
    assert "WARNING" in progress and "Traceback" not in progress
    assert len(_executed(progress)) == 8


def test_bad_cache_flags_are_refused_before_any_step(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    root = tmp_path / "root"
    for value, words in (
        ("type=s3,bucket=x", "unsupported cache type 's3'"),
        ("type=registry,ref=x/y:z,mode=medium", "invalid mode"),
        ("type=local,src=/x", "type=local needs dest=DIR"),
        ("type=registry,ref=x/y:z,colour=red", "unknown attribute 'colour'"),
    ):
        proc = bale(root, "build", "--cache-to", value, str(ctx), check=False)
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
        assert "#1" not in proc.stderr  # no step started


@pytest.mark.root
def test_a_cache_export_merges_with_what_is_there(
    fresh,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    dest = tmp_path / "cache-dir"
    _build(fresh("a"), ctx, "--cache-to", f"type=local,dest={dest},mode=max")
    before = _records(dest)
    (ctx / "notes.txt").write_text("other notes\n")
    _build(
        fresh("b"),
        ctx,
        "--cache-from",
        f"type=local,src={dest}",
        "--cache-to",
        f"type=local,dest={dest},mode=max",
    )
    after = _records(dest)
    assert before < after  # nothing replaced: the old records are all still there


def _records(layout: Path) -> set[str]:
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    config = json.loads(
        (layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text()
    )
    return {r["key"] for r in config["records"]}


@pytest.mark.root
def test_inline_cache_travels_in_the_pushed_image(
    fresh,
    registry: str,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    ctx = _context(tmp_path)
    image = f"{registry}/inline/app:1"
    bale(
        fresh("a"),
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        image,
        "--push",
        "--cache-to",
        "type=inline",
        str(ctx),
    )
    warm, _ = _build(fresh("b"), ctx, "--cache-from", image)
    assert _executed(warm) == []
