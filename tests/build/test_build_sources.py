"""COPY/ADD sources beyond the context: --chown by name, images, URLs, named contexts; and
the attestations a build attaches."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildhelp import bale, busybox_path, context_dir, events, local_output

from bale.oci.manifest import ATTESTATION_REF, Index
from bale.oci.platform import Platform
from bale.store.local import Store

pytestmark = pytest.mark.root


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    directory = tmp_path / "served"
    directory.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", directory
    finally:
        server.shutdown()
        server.server_close()


def test_copy_chown_by_name_resolves_through_the_image(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "f.txt").write_text("x")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nCOPY --chown=app:staff f.txt /f\nCOPY --chown=app f.txt /g\n"
        "COPY --chown=7:8 f.txt /h\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert ((out / "f").stat().st_uid, (out / "f").stat().st_gid) == (1234, 2345)
    # A user without a group takes its uid as gid, as Docker documents for COPY --chown.
    assert ((out / "g").stat().st_uid, (out / "g").stat().st_gid) == (1234, 1234)
    assert ((out / "h").stat().st_uid, (out / "h").stat().st_gid) == (7, 8)


def test_copy_chown_unknown_user_is_a_clear_error(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "f.txt").write_text("x")
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY --chown=nobody f.txt /f\n")
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1
    assert "Dockerfile:2" in proc.stderr and "nobody" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_copy_from_an_image_takes_the_platform_s_file(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY --from=base:1 /bin/busybox /bb\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--platform", "linux/amd64,linux/arm64")
    for platform in ("linux/amd64", "linux/arm64"):
        expected = busybox_path(platform)
        assert expected is not None
        got = out / platform.replace("/", "_") / "bb"
        assert got.read_bytes() == expected.read_bytes()


def test_add_url_verifies_checksum(
    store_root: Path, tmp_path: Path, http_files: tuple[str, Path]
) -> None:
    url, served = http_files
    (served / "data.txt").write_text("downloaded\n")
    digest = hashlib.sha256(b"downloaded\n").hexdigest()
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        f"FROM scratch\nADD --checksum=sha256:{digest} {url}/data.txt /dl/\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "dl" / "data.txt").read_text() == "downloaded\n"
    assert (out / "dl" / "data.txt").stat().st_mode & 0o777 == 0o600

    (ctx / "Dockerfile").write_text(
        f"FROM scratch\nADD --checksum=sha256:{'0' * 64} {url}/data.txt /dl/\n"
    )
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1
    assert "digest mismatch" in proc.stderr and "Dockerfile:2" in proc.stderr


def test_copy_refuses_a_url(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY http://127.0.0.1:1/x /x\n")
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1
    assert "source can't be a URL for COPY" in proc.stderr


def test_named_contexts(store_root: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "n.txt").write_text("named\n")
    layout = tmp_path / "layout"
    bale(store_root, "save", "-o", str(tmp_path / "base.tar"), "base:1")
    import tarfile

    with tarfile.open(tmp_path / "base.tar") as tar:
        tar.extractall(layout, filter="data")
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM img AS b\nFROM scratch\nCOPY --from=extra n.txt /n.txt\n"
        "COPY --from=b /bin/busybox /bin/a\nCOPY --from=lay /bin/busybox /bin/b\n"
    )
    out = tmp_path / "out"
    local_output(
        store_root,
        ctx,
        out,
        "--build-context",
        f"extra={extra}",
        "--build-context",
        "img=docker-image://base:1",
        "--build-context",
        f"lay=oci-layout://{layout}:1",
    )
    assert (out / "n.txt").read_text() == "named\n"
    host = busybox_path("linux/amd64")
    assert host is not None
    assert (out / "bin" / "a").read_bytes() == host.read_bytes() == (out / "bin" / "b").read_bytes()


def test_provenance_attestation_per_platform(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN echo hi > /hi\n")
    bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "attested:1",
        ".",
        cwd=ctx,
    )
    bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--platform",
        "linux/amd64",
        "--provenance=false",
        "-t",
        "plain:1",
        ".",
        cwd=ctx,
    )
    with Store(store_root) as store:
        index = store.index(store.resolve("attested:1"))
        images = {str(d.digest) for d in index.image_manifests()}
        atts = index.attestations()
        assert len(images) == 2 and len(atts) == 2
        assert {a.annotation(ATTESTATION_REF) for a in atts} == images
        for att in atts:
            layer = store.manifest(att).layers[0]
            statement = json.loads(store.content.read_bytes(layer.digest))
            # buildx's default: SLSA v1, mode=min.
            assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
            subject = statement["subject"][0]["digest"]["sha256"]
            assert f"sha256:{subject}" == att.annotation(ATTESTATION_REF)
            materials = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
            assert materials and materials[0]["uri"].startswith("pkg:docker/base@1")
        plain = Index.parse(store.read_json_blob(store.resolve("plain:1")))
        assert plain.attestations() == ()


def test_copy_parents_and_exclude(store_root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "x" / "y").mkdir(parents=True)
    (ctx / "z").mkdir()
    (ctx / "x" / "y" / "a.txt").write_text("a")
    (ctx / "x" / "b.log").write_text("b")
    (ctx / "z" / "c.txt").write_text("c")
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY --parents x/y/a.txt z/c.txt /p/\nCOPY --exclude=*.log x/ /e/\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert found == ["e/y/a.txt", "p/x/y/a.txt", "p/z/c.txt"]
    # An excluded file is outside the cache key too: editing it executes nothing.
    (ctx / "x" / "b.log").write_text("edited")
    proc = bale(store_root, "build", "--progress", "rawjson", ".", cwd=ctx)
    assert _started(proc.stderr) == []


def test_run_heredocs_shell_shebang_and_inline(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1\n"
        'RUN <<EOF\necho "shell on $(uname -m)" > /one\nEOF\n'
        "RUN <<EOT\n#!/bin/sh\necho shebang > /two\nEOT\n"
        "RUN cat > /three <<EOG\nhello from a heredoc\nEOG\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--platform", "linux/amd64,linux/arm64")
    for platform, machine in (("linux_amd64", "x86_64"), ("linux_arm64", "aarch64")):
        assert (out / platform / "one").read_text() == f"shell on {machine}\n"
        assert (out / platform / "two").read_text() == "shebang\n"
        assert (out / platform / "three").read_text() == "hello from a heredoc\n"
        # The executable heredoc was mounted for the step, never part of the image.
        assert not (out / platform / "dev" / "pipes").exists()


def test_mount_point_stubs_never_reach_the_layer(store_root: Path, tmp_path: Path) -> None:
    # FROM scratch has no /etc: the step's /etc/hosts and /etc/resolv.conf mount points are
    # made for it, and only what the step wrote (and its directory) may stay.
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY --from=base:1 /bin /bin\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo x > /etc/mine && : > /etc/empty"]\n'
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--platform", "linux/amd64,linux/arm64")
    for platform in ("linux_amd64", "linux_arm64"):
        assert sorted(p.name for p in (out / platform / "etc").iterdir()) == ["empty", "mine"]
        assert sorted(p.name for p in (out / platform).iterdir()) == ["bin", "etc"]


def test_jinja_example_renders_per_platform(store_root: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess

    ctx = tmp_path / "jinja"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "jinja", ctx)
    subprocess.run(
        [str(Path(__file__).resolve().parents[2] / "scripts" / "example-context.sh"), str(ctx)],
        check=True,
    )
    out = tmp_path / "out"
    bale(
        store_root,
        "build",
        "-f",
        str(ctx / "Dockerfile.j2"),
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm/v7",
        "--build-arg",
        "CHANNEL=beta",
        "-o",
        f"type=local,dest={out}",
        str(ctx),
    )
    assert not (out / "linux_amd64" / "etc" / "arm-note").exists()
    assert (out / "linux_arm_v7" / "etc" / "arm-note").read_text() == (
        "32-bit ARM build for linux/arm/v7\n"
    )
    bale(
        store_root,
        "build",
        "-f",
        str(ctx / "Dockerfile.j2"),
        "--progress",
        "quiet",
        "--platform",
        "linux/arm/v7",
        "--build-arg",
        "CHANNEL=beta",
        "-t",
        "jinja:1",
        str(ctx),
    )
    with Store(store_root) as store:
        target = store.resolve("jinja:1")
        manifest = store.select_platform(target, _arm())
        env = store.config(store.manifest(manifest).config).config.env_map()
    assert env["APP_ARCH"] == "armv7" and env["APP_CHANNEL"] == "beta"


def _arm() -> Platform:
    return Platform.parse("linux/arm/v7")


def test_base_without_path_gets_the_default_path(store_root: Path, tmp_path: Path) -> None:
    # base:1 is an imported rootfs: its config has no PATH at all.
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nENV PATH=/opt/bin:$PATH\nRUN echo $PATH > /p\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "p").read_text() == (
        "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )


def _started(proc_stderr: str) -> list[str]:
    """The steps (without their `[platform stage n/m]` prefix) that ran, not cached."""
    return [e["name"].split("] ", 1)[1] for e in events(proc_stderr) if e["kind"] == "start"]


def test_copy_from_a_stage_is_keyed_by_what_the_stage_made(
    store_root: Path, tmp_path: Path
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "input.txt").write_text("one\n")
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS build\nCOPY input.txt /input.txt\nRUN cp /input.txt /out\n"
        "FROM base:1\nCOPY --from=build /out /out\nRUN cat /out > /copy\n"
    )

    def build(*extra: str) -> list[str]:
        proc = bale(
            store_root, "build", "--progress", "rawjson", "-t", "keyed:1", *extra, ".", cwd=ctx
        )
        return _started(proc.stderr)

    build()
    # The build stage runs again but makes the same /out: what copies it stays cached.
    assert build("--no-cache-filter", "build") == [
        "COPY input.txt /input.txt",
        "RUN cp /input.txt /out",
    ]
    # A new /out: the copy and every step after it run again, with the new content.
    (ctx / "input.txt").write_text("two\n")
    assert build() == [
        "COPY input.txt /input.txt",
        "RUN cp /input.txt /out",
        "COPY --from=build /out /out",
        "RUN cat /out > /copy",
    ]
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "copy").read_text() == "two\n"


def test_run_bind_mounts_context_stage_and_named_context(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "conf.txt").write_text("v1\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "e.txt").write_text("from a named context\n")
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS gen\nRUN mkdir /out && echo generated > /out/g.txt\n"
        "FROM base:1\n"
        "RUN --mount=type=bind,source=conf.txt,target=/c.txt cat /c.txt > /conf\n"
        "RUN --mount=type=bind,from=gen,source=/out,target=/in cat /in/g.txt > /gen\n"
        "RUN --mount=type=bind,from=extra,target=/x cat /x/e.txt > /extra\n"
    )

    def build() -> list[str]:
        proc = bale(
            store_root,
            "build",
            "--progress",
            "rawjson",
            "--build-context",
            f"extra={extra}",
            "-o",
            f"type=local,dest={tmp_path / 'out'}",
            ".",
            cwd=ctx,
        )
        return _started(proc.stderr)

    build()
    out = tmp_path / "out"
    assert (out / "conf").read_text() == "v1\n"
    assert (out / "gen").read_text() == "generated\n"
    assert (out / "extra").read_text() == "from a named context\n"
    assert not (out / "c.txt").exists() and not (out / "in").exists()  # mounts leave no trace
    assert build() == []
    # A bind-mounted file is part of the step's cache key, as BuildKit checksums it: that step
    # and the ones built on it run again; the other stage does not.
    (ctx / "conf.txt").write_text("v2\n")
    again = build()
    assert again[0] == "RUN --mount=type=bind,source=conf.txt,target=/c.txt cat /c.txt > /conf"
    assert len(again) == 3 and not any("echo generated" in s for s in again)
    assert (out / "conf").read_text() == "v2\n"


def test_run_bind_mount_cannot_leave_the_context(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (tmp_path / "secret.txt").write_text("outside\n")
    (ctx / "link").symlink_to(tmp_path / "secret.txt")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nRUN --mount=type=bind,source=link,target=/l cat /l > /read || true\n"
    )
    out = tmp_path / "out"
    bale(
        store_root,
        "build",
        "--progress",
        "plain",
        "-o",
        f"type=local,dest={out}",
        ".",
        cwd=ctx,
        check=False,
    )
    assert not (out / "read").exists() or "outside" not in (out / "read").read_text()


def test_workdir_is_created_and_history_matches_layers(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nWORKDIR /srv/app\nWORKDIR sub\nWORKDIR /bin\nRUN true\nENV A=b\n"
        'RUN touch /x\nCMD ["pwd"]\n'
    )
    bale(store_root, "build", "--progress", "quiet", "-t", "wd:1", ".", cwd=ctx)
    with Store(store_root) as store:
        manifest = store.manifest(store.select_platform(store.resolve("wd:1"), None))
        config = store.config(manifest.config)
    assert config.config.working_dir == "/bin"
    steps = [(h.created_by, h.empty_layer) for h in config.history[1:]]
    assert steps == [
        ("WORKDIR /srv/app # buildkit", False),  # made /srv/app
        ("WORKDIR /srv/app/sub # buildkit", False),  # made /srv/app/sub (absolute, as BuildKit)
        ("WORKDIR /bin # buildkit", True),  # already there
        ("RUN /bin/sh -c true # buildkit", False),  # changed nothing: still a layer
        ("ENV A=b", True),
        ("RUN /bin/sh -c touch /x # buildkit", False),
        ('CMD ["pwd"]', True),
    ]
    # What OCI requires: one non-empty history entry per layer, in order.
    assert sum(not h.empty_layer for h in config.history) == len(manifest.layers)
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "srv" / "app" / "sub").is_dir()


def test_sbom_lists_the_packages_of_the_image(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "status").write_text(
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: busybox\nStatus: install ok installed\nVersion: 1:1.35.0-4\n"
    )
    (ctx / "installed").write_text("P:musl\nV:1.2.4-r2\n\nP:zlib\nV:1.3.1-r0\n")
    for db, expected in (
        ("/var/lib/dpkg/status", [["busybox", "1:1.35.0-4"], ["libc6", "2.36-9"]]),
        ("/lib/apk/db/installed", [["musl", "1.2.4-r2"], ["zlib", "1.3.1-r0"]]),
    ):
        source = "status" if "dpkg" in db else "installed"
        (ctx / "Dockerfile").write_text(f"FROM base:1\nCOPY {source} {db}\n")
        bale(
            store_root, "build", "--progress", "quiet", "--sbom=true", "-t", "sbom:1", ".", cwd=ctx
        )
        with Store(store_root) as store:
            index = store.index(store.resolve("sbom:1"))
            (att,) = index.attestations()
            layers = store.manifest(att).layers
            statements = [json.loads(store.content.read_bytes(x.digest)) for x in layers]
        spdx = next(s for s in statements if s["predicateType"] == "https://spdx.dev/Document")
        # After the image itself, the packages it contains.
        image, *contained = spdx["predicate"]["packages"]
        assert image["primaryPackagePurpose"] == "CONTAINER"
        assert [[p["name"], p["versionInfo"]] for p in contained] == expected


def test_run_bind_mount_from_an_image(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM scratch AS empty\nFROM base:1\n"
        "RUN --mount=type=bind,from=base:1,source=/etc,target=/img cat /img/group > /g\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--platform", "linux/amd64,linux/arm64")
    for platform in ("linux_amd64", "linux_arm64"):
        assert (out / platform / "g").read_text() == "root:x:0:\nstaff:x:2345:\n"
