"""Hostile contexts and archives: each a clear located error or confined, never a traceback.
(Escaping links in COPY sources are in tests/build/test_build_confinement.py; hostile layers
in tests/execution/test_hostile_layers.py; bad archive JSON in tests/store.)"""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from bale.builder.context import BuildContext
from bale.trees import temporary_directory, walk
from fuzz.harness import bale


def _deep(top: Path, levels: int) -> Path:
    """`levels` nested directories `d` under `top` (made by relative steps: the full path may
    be longer than PATH_MAX), with a file at the bottom."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    finally:
        os.close(fd)
    return top


def test_walking_and_removing_trees_deeper_than_the_interpreter_stack(tmp_path: Path) -> None:
    # 1,500 levels: os.walk and shutil.rmtree (Python 3.11) raise RecursionError here.
    with temporary_directory(prefix="deep-", dir=tmp_path) as tmp:
        _deep(Path(tmp), 1500)
        assert sum(len(files) for _, _, files in walk(tmp)) == 1
        assert len(BuildContext(Path(tmp)).files()) == 1501
        bottom_up = [d for d, _, _ in walk(tmp, topdown=False)]
        assert bottom_up[0].endswith("/d") and bottom_up[-1] == tmp
    assert list(tmp_path.iterdir()) == []


def _build(root: Path, ctx: Path, dockerfile: str, *args: str) -> tuple[int, str]:
    (ctx / "Dockerfile").write_text(dockerfile)
    proc = bale(root, "build", "--progress", "plain", *args, str(ctx), timeout=300)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


@pytest.mark.root
def test_a_context_deeper_than_a_path_can_name_is_a_located_error(tmp_path: Path) -> None:
    ctx = _deep(tmp_path / "ctx", 10_000)
    for dockerfile in ("FROM scratch\nCOPY . /\n", "FROM scratch\nCOPY d /d\n"):
        code, err = _build(tmp_path / "root", ctx, dockerfile, "-o", "type=tar,dest=/dev/null")
        assert code == 1
        assert "build context path too long: 'd/d/d" in err and "Dockerfile:2" in err


@pytest.mark.root
def test_link_loops_fifos_sockets_and_devices_in_the_context(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "dir").mkdir(parents=True)
    (ctx / "a").symlink_to("b")
    (ctx / "b").symlink_to("a")
    (ctx / "self").symlink_to("self")
    (ctx / "dot").symlink_to(".")
    (ctx / "dir" / "up").symlink_to("..")
    os.mkfifo(ctx / "fifo")
    os.mknod(ctx / "null", 0o666 | 0o020000, os.makedev(1, 3))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(ctx / "sock"))
    (ctx / "file").write_text("kept\n")
    root = tmp_path / "root"
    out = tmp_path / "out"
    # The whole context: links are copied as links, never followed; a fifo is never opened
    # (the build would hang); nodes and sockets are not made in the output.
    code, err = _build(root, ctx, "FROM scratch\nCOPY . /\n", "-o", f"type=local,dest={out}")
    assert code == 0, err
    assert (out / "file").read_text() == "kept\n"
    assert os.readlink(out / "a") == "b" and os.readlink(out / "dot") == "."
    assert not (out / "null").exists()
    # A socket becomes an empty regular file, as BuildKit copies it (testCopySocket).
    assert (out / "sock").is_file() and not (out / "sock").is_socket()
    # A source through the loop is named and located.
    code, err = _build(root, ctx, "FROM scratch\nCOPY a/x /x\n", "-o", f"type=local,dest={out}")
    assert code == 1
    assert "too many levels of symbolic links in 'a/x'" in err and "Dockerfile:2" in err


def _archive(good: bytes, *extra: tarfile.TarInfo) -> bytes:
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(good)) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for info in extra:
            tar.addfile(info)
        for info in src:
            tar.addfile(info, src.extractfile(info) if info.isfile() else None)
    return out.getvalue()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.root
def test_bale_load_of_hostile_archives(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("f\n")
    code, err = _build(root, ctx, "FROM scratch\nCOPY f /f\n", "-t", "hostile/good:1")
    assert code == 0, err
    good = tmp_path / "good.tar"
    assert bale(root, "save", "-o", str(good), "hostile/good:1").returncode == 0
    big_pax = tarfile.TarInfo("blobs/sha256/x")
    big_pax.pax_headers = {"comment": "x" * (16 << 20)}
    cases = {
        "absolute link": (_link("blobs/sha256/a", "/etc/passwd", tarfile.SYMTYPE),),
        "hardlink outside": (_link("blobs/sha256/h", "../../etc/passwd", tarfile.LNKTYPE),),
        "absolute hardlink": (_link("blobs/sha256/h", "/etc/passwd", tarfile.LNKTYPE),),
        "link loop": (
            _link("blobs/a", "b", tarfile.SYMTYPE),
            _link("blobs/b", "a", tarfile.SYMTYPE),
        ),
        "dotdot name": (tarfile.TarInfo("../../evil"),),
        "huge pax header": (big_pax,),
    }
    for name, extra in cases.items():
        path = tmp_path / "bad.tar"
        path.write_bytes(_archive(good.read_bytes(), *extra))
        proc = bale(root, "load", "-i", str(path))
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        err = proc.stderr.strip()
        assert err.startswith("ERROR: ") and len(err.splitlines()) <= 3, (name, err)
        assert "Traceback" not in err and "internal error" not in err, (name, err)
    assert not (tmp_path.parent / "evil").exists()
    assert bale(root, "store", "check").returncode == 0
