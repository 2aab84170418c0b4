"""COPY/ADD as BuildKit does it: links followed at the top, owners, wildcards, .dockerignore
exceptions, --chmod, and the errors it gives instead of breaking an image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from buildhelp import bale, context_dir, local_output

pytestmark = pytest.mark.root


def test_top_level_links_are_followed_links_inside_are_kept(
    store_root: Path, tmp_path: Path
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "real.txt").write_text("real\n")
    (ctx / "link.txt").symlink_to("real.txt")
    (ctx / "dir").mkdir()
    (ctx / "dir" / "a.txt").write_text("a\n")
    (ctx / "dir" / "inner").symlink_to("a.txt")
    (ctx / "linkdir").symlink_to("dir")
    (ctx / "out").symlink_to("/etc/passwd")  # absolute: resolved inside the context, missing
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nCOPY link.txt /l1\nCOPY linkdir /d2\nCOPY link.txt /dest/\n"
    )
    out = tmp_path / "out-dir"
    local_output(store_root, ctx, out)
    assert not (out / "l1").is_symlink() and (out / "l1").read_text() == "real\n"
    assert (out / "d2").is_dir() and not (out / "d2").is_symlink()
    assert (out / "d2" / "a.txt").read_text() == "a\n"
    assert os.readlink(out / "d2" / "inner") == "a.txt"
    assert (out / "dest" / "link.txt").read_text() == "real\n"  # copied under the link's name
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY out /o\n")
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1 and "not in the build context" in proc.stderr


def test_chown_owns_the_directories_it_makes(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "package.json").write_text("{}")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nCOPY --chown=app:staff package.json /home/app/proj/\n"
        "COPY --chown=7:8 package.json /opt/x/y/file\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    for path, ids in (
        ("home/app", (1234, 2345)),
        ("home/app/proj", (1234, 2345)),
        ("opt/x", (7, 8)),
        ("opt/x/y", (7, 8)),
        ("opt/x/y/file", (7, 8)),
    ):
        st = (out / path).stat()
        assert (st.st_uid, st.st_gid) == ids, path


def test_copy_from_a_stage_keeps_owners(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS src\nRUN mkdir /out && echo s > /out/s && chown 1234:2345 /out/s\n"
        "FROM base:1\nCOPY --from=src /out /o2/\nCOPY --from=src --chown=5:6 /out /o3/\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert ((out / "o2" / "s").stat().st_uid, (out / "o2" / "s").stat().st_gid) == (1234, 2345)
    assert ((out / "o3" / "s").stat().st_uid, (out / "o3" / "s").stat().st_gid) == (5, 6)


def test_dockerignore_exception_inside_an_excluded_directory(
    store_root: Path, tmp_path: Path
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "logs").mkdir()
    (ctx / "logs" / "a.log").write_text("a")
    (ctx / "logs" / "keep.log").write_text("keep")
    (ctx / ".dockerignore").write_text("logs\n!logs/keep.log\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /app/\nCOPY logs /x/\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert sorted(p.name for p in (out / "app" / "logs").iterdir()) == ["keep.log"]
    assert sorted(p.name for p in (out / "x").iterdir()) == ["keep.log"]


def test_a_wildcard_matching_one_file_may_name_the_destination(
    store_root: Path, tmp_path: Path
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "target").mkdir()
    (ctx / "target" / "app-1.0.jar").write_text("jar")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY target/*.jar app.jar\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "app.jar").read_text() == "jar"
    (ctx / "target" / "app-2.0.jar").write_text("jar2")
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1 and "must be a directory and end with a /" in proc.stderr


@pytest.mark.parametrize(
    ("setup", "copy", "message"),
    [
        # A directory over a link would replace it (a merged-/usr /lib): refused.
        ("ln -s usr/lib /lib", "COPY tree/ /", "cannot copy to non-directory: /lib"),
        ("mkdir -p /x/a", "COPY d2 /x/", "cannot replace to directory /x/a with file"),
        ("touch /efile", "COPY d2 /efile", "cannot copy to non-directory: /efile"),
    ],
)
def test_copies_that_would_break_the_image_are_refused(
    store_root: Path, tmp_path: Path, setup: str, copy: str, message: str
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "tree" / "lib").mkdir(parents=True)
    (ctx / "tree" / "lib" / "libx.so").write_text("x")
    (ctx / "d2").mkdir()
    (ctx / "d2" / "a").write_text("file")
    (ctx / "Dockerfile").write_text(f"FROM base:1\nRUN mkdir -p /usr/lib && {setup}\n{copy}\n")
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr and "Dockerfile:3" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_chmod_octal_and_symbolic(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "f").write_text("f")
    os.chmod(ctx / "f", 0o640)
    (ctx / "d").mkdir()
    (ctx / "d" / "g").write_text("g")
    os.chmod(ctx / "d" / "g", 0o600)
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY --chmod=755 f /octal\nCOPY --chmod=u+x,go-rwx f /sym\n"
        "COPY --chmod=a=rX d /dir/\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "octal").stat().st_mode & 0o7777 == 0o755
    assert (out / "sym").stat().st_mode & 0o7777 == 0o700  # 640, u+x, go-rwx
    assert (out / "dir" / "g").stat().st_mode & 0o7777 == 0o444
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY --chmod=999 f /bad\n")
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1 and "invalid chmod parameter" in proc.stderr
    assert "Dockerfile:2" in proc.stderr and "internal error" not in proc.stderr
