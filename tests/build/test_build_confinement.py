"""Nothing outside the build context, and nothing .dockerignore leaves out, reaches a step:
every path is resolved inside the context root whatever links it goes through, for COPY,
ADD, COPY --parents, RUN --mount=type=bind and named contexts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from buildhelp import bale, context_dir, local_output

pytestmark = pytest.mark.root

HOST_SECRET = "host-only-secret\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the context, standing for the host's /etc."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "passwd").write_text(HOST_SECRET)
    (path / "data.tar").write_bytes(b"")
    return path


def _fails(root: Path, ctx: Path, *extra: str) -> str:
    proc = bale(root, "build", "--progress", "plain", *extra, ".", cwd=ctx, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    return proc.stderr


def _escape_context(tmp_path: Path, outside: Path) -> Path:
    ctx = context_dir(tmp_path)
    (ctx / "linkdir").symlink_to(outside)  # absolute, to a real directory outside
    (ctx / "up").symlink_to(os.path.relpath(outside, ctx))  # relative, climbing out
    (ctx / "chain").symlink_to("linkdir")  # a link to the link
    (ctx / "nested").mkdir()
    (ctx / "nested" / "deep").symlink_to("../up")
    return ctx


@pytest.mark.parametrize(
    "line",
    [
        "COPY linkdir/passwd /x",
        "COPY up/passwd /x",
        "COPY chain/passwd /x",
        "COPY nested/deep/passwd /x",
        "COPY --parents linkdir/passwd /x/",
        "ADD linkdir/passwd /x",
        "ADD up/data.tar /x/",
    ],
)
def test_a_link_in_the_middle_of_a_source_cannot_leave_the_context(
    store_root: Path, tmp_path: Path, outside: Path, line: str
) -> None:
    ctx = _escape_context(tmp_path, outside)
    (ctx / "Dockerfile").write_text(f"FROM base:1\n{line}\n")
    err = _fails(store_root, ctx)
    assert "not found" in err or "no source files" in err
    assert HOST_SECRET.strip() not in err


def test_a_wildcard_through_a_link_out_of_the_context_matches_nothing(
    store_root: Path, tmp_path: Path, outside: Path
) -> None:
    # A wildcard may match nothing (as BuildKit): the build succeeds, the host file stays out.
    ctx = _escape_context(tmp_path, outside)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY linkdir/pass* /x/\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert list((out / "x").iterdir()) == []
    # Nor does a wildcard through a link to a file .dockerignore leaves out.
    ctx = tmp_path / "ignoring"
    ctx.mkdir()
    (ctx / "secret.env").write_text("TOKEN=s3cr3t\n")
    (ctx / "notsecret").symlink_to("secret.env")
    (ctx / ".dockerignore").write_text("secret.env\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY notsec* /x/\n")
    out = tmp_path / "out2"
    local_output(store_root, ctx, out)
    assert list((out / "x").iterdir()) == []


def test_a_link_in_the_middle_resolves_inside_the_context(
    store_root: Path, tmp_path: Path, outside: Path
) -> None:
    # `linkdir -> /etc` means the context's own etc/, as a chroot would see it.
    ctx = context_dir(tmp_path)
    (ctx / "etc").mkdir()
    (ctx / "etc" / "passwd").write_text("context's own\n")
    (ctx / "linkdir").symlink_to("/etc")
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY linkdir/passwd /x\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "x").read_text() == "context's own\n"


def test_copying_a_directory_keeps_links_as_links(
    store_root: Path, tmp_path: Path, outside: Path
) -> None:
    ctx = _escape_context(tmp_path, outside)
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY . /ctx/\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "ctx" / "linkdir").is_symlink()
    assert os.readlink(out / "ctx" / "linkdir") == str(outside)
    # The link dangles in the image: the host file was not copied through it.
    assert not any(
        HOST_SECRET.strip() in p.read_text(errors="replace")
        for p in (out / "ctx").rglob("*")
        if p.is_file() and not p.is_symlink()
    )


@pytest.mark.parametrize(
    ("ignore", "line"),
    [
        ("secret.env\n", "COPY notsecret /x"),
        ("secrets/\n", "COPY secretlink/key /x"),
        ("secrets\n", "COPY --parents secretlink/key /x/"),
        ("*.env\n", "ADD notsecret /x"),
    ],
)
def test_dockerignore_cannot_be_bypassed_through_a_link(
    store_root: Path, tmp_path: Path, ignore: str, line: str
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "secret.env").write_text("TOKEN=s3cr3t\n")
    (ctx / "secrets").mkdir()
    (ctx / "secrets" / "key").write_text("TOKEN=s3cr3t\n")
    (ctx / "notsecret").symlink_to("secret.env")
    (ctx / "secretlink").symlink_to("secrets")
    (ctx / ".dockerignore").write_text(ignore)
    (ctx / "Dockerfile").write_text(f"FROM base:1\n{line}\n")
    err = _fails(store_root, ctx)
    assert "s3cr3t" not in err


def test_run_bind_mounts_see_neither_the_outside_nor_ignored_files(
    store_root: Path, tmp_path: Path, outside: Path
) -> None:
    ctx = _escape_context(tmp_path, outside)
    (ctx / "secret.env").write_text("TOKEN=s3cr3t\n")
    (ctx / "sub").mkdir()
    (ctx / "sub" / "secret.env").write_text("TOKEN=s3cr3t\n")
    (ctx / "sub" / "kept.txt").write_text("kept\n")
    (ctx / "notsecret").symlink_to("secret.env")
    (ctx / ".dockerignore").write_text("**/secret.env\n")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\n"
        "RUN --mount=type=bind,target=/ctx "
        "ls -R /ctx > /listing; cat /ctx/linkdir/passwd /ctx/notsecret "
        "/ctx/secret.env /ctx/sub/secret.env > /leak 2>/dev/null; true\n"
        "RUN --mount=type=bind,target=/ctx,rw echo changed > /ctx/sub/kept.txt\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "leak").read_text() == ""
    listing = (out / "listing").read_text()
    assert "kept.txt" in listing and "secret.env" not in listing
    # A read-write bind writes into a scratch layer, never into the context.
    assert (ctx / "sub" / "kept.txt").read_text() == "kept\n"
    for source in ("linkdir/passwd", "notsecret", "secret.env"):
        (ctx / "Dockerfile").write_text(
            f"FROM base:1\nRUN --mount=type=bind,source={source},target=/f cat /f\n"
        )
        err = _fails(store_root, ctx)
        assert "s3cr3t" not in err and HOST_SECRET.strip() not in err


def test_named_contexts_are_confined_too(store_root: Path, tmp_path: Path, outside: Path) -> None:
    ctx = context_dir(tmp_path)
    named = tmp_path / "named"
    named.mkdir()
    (named / "linkdir").symlink_to(outside)
    (named / "ok.txt").write_text("ok\n")
    for line in (
        "COPY --from=extra linkdir/passwd /x",
        "RUN --mount=type=bind,from=extra,source=linkdir/passwd,target=/f cat /f",
    ):
        (ctx / "Dockerfile").write_text(f"FROM base:1\n{line}\n")
        err = _fails(store_root, ctx, "--build-context", f"extra={named}")
        assert HOST_SECRET.strip() not in err
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY --from=extra ok.txt /ok\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--build-context", f"extra={named}")
    assert (out / "ok").read_text() == "ok\n"
