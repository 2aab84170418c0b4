"""BuildKit's COPY/ADD integration tests (frontend/dockerfile/dockerfile_add_test.go,
dockerfile_copy_test.go, dockerfile_parents_test.go, dockerfile_test.go), transcribed with
busybox images made here. Each test names the upstream test it stands for; several upstream
builds share one build here when their assertions do not interfere."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildhelp import bale, context_dir, local_output


def _tar(*members: tuple[str, bytes | str]) -> bytes:
    """A tar of regular files (bytes) and symlinks (str: the link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if isinstance(body, str):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, body, 0o755
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


MODIFIED = time.time() - 24 * 3600


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, bytes], list[str]]]:
    """An HTTP server of `files` (path -> body; "/" too) sending an ETag and a Last-Modified
    a day ago; yields its URL, the files and the methods it was asked."""
    files: dict[str, bytes] = {}
    methods: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            methods.append(self.command)
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()[:16]}"')
            self.send_header("Last-Modified", email.utils.formatdate(MODIFIED, usegmt=True))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, methods
    finally:
        server.shutdown()
        server.server_close()


def _fails(root: Path, ctx: Path, *args: str) -> str:
    proc = bale(root, "build", "--progress", "plain", *args, ".", cwd=ctx, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


FOO_TAR = _tar(("foo", b"content0"))


def test_add_archives_and_urls(
    store_root: Path, tmp_path: Path, served: tuple[str, dict[str, bytes], list[str]]
) -> None:
    """testDockerfileADDFromURL, testDockerfileAddArchive, testDockerfileAddChownArchive,
    testDockerfileAddArchiveWildcard: local archives are extracted by ADD (not with
    --unpack=false, never by COPY), remote ones only with --unpack=true; a URL without a
    file name saves as __unnamed__ with the server's Last-Modified."""
    url, files, _ = served
    gz = gzip.compress(FOO_TAR)
    files.update({"/foo": b"content1", "/": b"content2", "/t.tar.gz": gz})
    ctx = context_dir(tmp_path)
    (ctx / "t.tar").write_bytes(FOO_TAR)
    (ctx / "t.tar.gz").write_bytes(gz)
    (ctx / "b.tar").write_bytes(_tar(("bar", b"content1")))
    (ctx / "Dockerfile").write_text(
        "FROM scratch\n"
        f"ADD {url}/foo /dest/\nADD {url}/ /dest/\n"
        "ADD t.tar /\nADD t.tar.gz /gz/\nADD --unpack=false t.tar.gz /nounpack/\n"
        "COPY t.tar.gz /copy/\n"
        f"ADD {url}/t.tar.gz /url/\nADD --unpack=true {url}/t.tar.gz /unpacked/\n"
        f"ADD {url}/t.tar.gz /newname.tar.gz\n"
        "ADD --chown=100:200 t.tar /out/\n"
        "ADD *.tar /wild\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "dest" / "foo").read_bytes() == b"content1"
    unnamed = out / "dest" / "__unnamed__"
    assert unnamed.read_bytes() == b"content2"
    assert int(unnamed.stat().st_mtime) == int(MODIFIED)
    assert (out / "foo").read_bytes() == (out / "gz" / "foo").read_bytes() == b"content0"
    assert (out / "nounpack" / "t.tar.gz").read_bytes() == gz
    assert not (out / "nounpack" / "foo").exists()
    assert (out / "copy" / "t.tar.gz").read_bytes() == gz
    assert (out / "url" / "t.tar.gz").read_bytes() == gz
    assert (out / "unpacked" / "foo").read_bytes() == b"content0"
    assert (out / "newname.tar.gz").read_bytes() == gz
    for path in (out / "out", out / "out" / "foo"):
        assert (path.stat().st_uid, path.stat().st_gid) == (100, 200), path
    assert (out / "wild" / "foo").read_bytes() == b"content0"
    assert (out / "wild" / "bar").read_bytes() == b"content1"
    # Upstream also checks that a second run asks with HEAD only (its HTTP cache keyed by
    # ETag); bale downloads again and compares the content (docs/buildkit-tests.md).


def test_add_checksum(
    store_root: Path, tmp_path: Path, served: tuple[str, dict[str, bytes], list[str]]
) -> None:
    """testAddChecksum: valid (also from ENV), mismatch, unsupported or missing algorithm, and
    a local source, which cannot have a checksum."""
    url, files, _ = served
    files["/foo"] = b"content1"
    good = "sha256:" + hashlib.sha256(b"content1").hexdigest()
    ctx = context_dir(tmp_path)
    (ctx / "foo").write_bytes(b"local file")
    (ctx / "Dockerfile").write_text(
        f"FROM scratch\nADD --checksum={good} {url}/foo /tmp/foo\n"
        f"ENV DIGEST={good}\nENV LINK={url}/foo\nADD --checksum=${{DIGEST}} ${{LINK}} /tmp/bar\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    assert (out / "tmp" / "foo").read_bytes() == (out / "tmp" / "bar").read_bytes() == b"content1"
    for checksum, source, message in (
        ("sha256:" + hashlib.sha256(b"").hexdigest(), f"{url}/foo", "digest mismatch"),
        ("md5:7e55db001d319a94b0b713529a756623", f"{url}/foo", "unsupported digest algorithm"),
        ("unknown:" + good[7:], f"{url}/foo", "unsupported digest algorithm"),
        (good[7:], f"{url}/foo", "invalid checksum digest format"),
        (
            "sha256:" + hashlib.sha256(b"local file").hexdigest(),
            "foo",
            "checksum requires HTTP(S) or Git sources",
        ),
    ):
        (ctx / "Dockerfile").write_text(f"FROM scratch\nADD --checksum={checksum} {source} /x\n")
        err = _fails(store_root, ctx)
        assert message in err and "Dockerfile:2" in err, (checksum, err)


def test_invalid_chmod_and_from_args(store_root: Path, tmp_path: Path) -> None:
    """testAddInvalidChmod, testCopyInvalidChmod, testDockerfileCopyFromArgs,
    testOutOfOrderStage: errors at the instruction, in BuildKit's words."""
    ctx = context_dir(tmp_path)
    (ctx / "foo").write_text("foo-contents")
    for keyword in ("ADD", "COPY"):
        for mode in ("64a", "10000"):
            (ctx / "Dockerfile").write_text(f"FROM scratch\n{keyword} --chmod={mode} foo /\n")
            err = _fails(store_root, ctx)
            assert (
                f"invalid chmod parameter: '{mode}'. it should be octal string and between 0 "
                "and 07777" in err
            ), err
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY --from=$FOO . .\n")
    err = _fails(store_root, ctx)
    assert (
        "variable expansion is not supported for --from, define a new stage with FROM using "
        "ARG from global scope as a workaround" in err
    ), err
    for src in ("/", "/d2"):
        (ctx / "Dockerfile").write_text(
            f"FROM base:1 AS target\nCOPY --from=build {src} /out\n"
            "FROM base:1 AS build\nCOPY /Dockerfile /d2\nFROM target\n"
        )
        err = _fails(store_root, ctx)
        assert "cannot copy from stage" in err, err
        assert "needs to be defined before current stage" in err, err


def test_copy_sources(store_root: Path, tmp_path: Path) -> None:
    """testEmptyWildcard, testCopySocket, testCopyThroughSymlinkMultiStage,
    testSymlinkDestination: a wildcard matching nothing beside a file, a socket copied as a
    regular file, a source path through symlinks in another stage, a destination through a
    symlink an archive made."""
    ctx = context_dir(tmp_path)
    (ctx / "foo").write_text("contents0")
    (ctx / "t.tar").write_bytes(_tar(("symlink", "../tmp/symlink-target")))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(ctx / "socket.sock"))
    try:
        (ctx / "Dockerfile").write_text(
            "FROM base:1 AS build\n"
            "RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && "
            'echo -n "data" > /sub/foo\n'
            "FROM scratch\nCOPY foo nomatch* /\nCOPY . /all/\n"
            "COPY --from=build /sub/foo /via/\nCOPY --from=build /sub2/foo /via/bar\n"
            "ADD t.tar /\nCOPY foo /symlink/\n"
        )
        out = tmp_path / "out"
        local_output(store_root, ctx, out)
    finally:
        sock.close()
    assert (out / "foo").read_text() == "contents0"
    assert (out / "all" / "socket.sock").is_file()
    assert (out / "via" / "foo").read_text() == (out / "via" / "bar").read_text() == "data"
    assert (out / "tmp" / "symlink-target" / "foo").read_text() == "contents0"


def test_copy_chmod(store_root: Path, tmp_path: Path) -> None:
    """testCopyChmod: modes of files and of the parents COPY --chmod makes."""
    ctx = context_dir(tmp_path)
    (ctx / "foo").write_text("foo-contents")
    (ctx / "foo").chmod(0o600)
    (ctx / "bar").write_text("bar-contents")
    (ctx / "bar").chmod(0o700)
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS base\nRUN mkdir -m 0777 /out\n"
        "COPY --chmod=0644 foo /\nCOPY --chmod=777 bar /baz\nCOPY --chmod=0 foo /foobis\n"
        "COPY --chmod=777 foo /parent/foo\nCOPY --chmod=770 foo /parent/sub/foo\n"
        "ARG mode\nCOPY --chmod=${mode} foo /footer\n"
        'RUN stat -c "%04a" /foo  > /out/fooperm\nRUN stat -c "%04a" /baz  > /out/barperm\n'
        'RUN stat -c "%04a" /foobis  > /out/foobisperm\n'
        'RUN stat -c "%04a" /parent  > /out/parentperm\n'
        'RUN stat -c "%04a" /parent/sub  > /out/subparentperm\n'
        'RUN stat -c "%04a" /footer  > /out/footerperm\n'
        "FROM scratch\nCOPY --from=base /out /\n"
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out, "--build-arg", "mode=755")
    got = {p.name: p.read_text() for p in out.iterdir()}
    assert got == {
        "fooperm": "0644\n",
        "barperm": "0777\n",
        "foobisperm": "0000\n",
        "parentperm": "0777\n",
        "subparentperm": "0770\n",
        "footerperm": "0755\n",
    }


def test_excluded_files_on_copy(store_root: Path, tmp_path: Path) -> None:
    """testExcludedFilesOnCopy (the directory context): --exclude with COPY and ADD, with
    wildcard sources, and excluding everything (an empty directory)."""
    ctx = context_dir(tmp_path)
    contents = {
        "dir1/file-101.png": "2",
        "dir1/file-102.txt": "3",
        "dir1/file-103.jpeg": "4",
        "dir2/file-201.pdf": "6",
        "dir2/file-202.jpeg": "7",
        "dir2/file-203.png": "8",
        "dir3/file-301.mp3": "9",
        "dir3/file-302.mpeg": "10",
        "dir4/file-401.txt": "11",
    }
    for name, body in contents.items():
        (ctx / name).parent.mkdir(exist_ok=True)
        (ctx / name).write_text(body)
    os.symlink("file-401.txt", ctx / "dir4" / "file-402.txt")
    os.symlink("file-404.txt", ctx / "dir4" / "file-403.txt")
    (ctx / "Dockerfile").write_text(
        "FROM scratch as builder1\nCOPY --exclude=*/*.png --exclude=*/*.jpeg . /1\n"
        "FROM scratch as builder2\nCOPY --exclude=*/*.pdf --exclude=*/*.txt . /2\n"
        "FROM scratch as builder3\nADD --exclude=*.mp3 dir3/ /3/\n"
        "FROM scratch as builder4\nCOPY --exclude=*.mp3 --exclude=*.jpeg --exclude=*.png "
        "--exclude=*.pdf --exclude=*.txt dir* /4/\n"
        "FROM scratch as builder5\nADD --exclude=*.mp* --exclude=*.jpeg --exclude=*.png "
        "--exclude=*.pdf dir* /5\n"
        "FROM scratch as builder6\nADD --exclude=* dir* /6\n"
        "FROM scratch\n" + "".join(f"COPY --from=builder{i} / /builder{i}\n" for i in range(1, 7))
    )
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() or p.is_symlink()}
    assert present == {
        "builder1/1/dir1/file-102.txt",
        "builder1/1/dir2/file-201.pdf",
        "builder1/1/dir3/file-301.mp3",
        "builder1/1/dir3/file-302.mpeg",
        "builder1/1/dir4/file-401.txt",
        "builder1/1/dir4/file-402.txt",
        "builder1/1/dir4/file-403.txt",
        "builder1/1/Dockerfile",
        "builder2/2/dir1/file-101.png",
        "builder2/2/dir1/file-103.jpeg",
        "builder2/2/dir2/file-202.jpeg",
        "builder2/2/dir2/file-203.png",
        "builder2/2/dir3/file-301.mp3",
        "builder2/2/dir3/file-302.mpeg",
        "builder2/2/Dockerfile",
        "builder3/3/file-302.mpeg",
        "builder4/4/file-302.mpeg",
        "builder5/5/file-102.txt",
        "builder5/5/file-401.txt",
        "builder5/5/file-402.txt",
        "builder5/5/file-403.txt",
    }
    assert os.readlink(out / "builder5/5/file-403.txt") == "file-404.txt"
    assert (out / "builder1/1/dir4/file-401.txt").read_text() == "11"
    assert list((out / "builder6" / "6").iterdir()) == []


PARENTS_BASE = """FROM base:1 AS base
WORKDIR /test
RUN <<eot
	set -ex
	mkdir -p a/b/c/d/e
	mkdir -p a/b2/c/d/e
	mkdir -p a/b/c2/d/e
	mkdir -p a/b/c2/d/e2
	touch a/b/c/d/foo
	touch a/b/c/d/e/bay
	touch a/b2/c/d/e/bar
	touch a/b/c2/d/e/baz
	touch a/b/c2/d/e2/baz
eot
"""

PARENTS_STAGES = {
    "middle": (
        "/test/a/b/./c/d",
        "[ -d /out/c/d/e ]\n[ -f /out/c/d/foo ]\n[ ! -d /out/a ]\n[ ! -d /out/e ]",
    ),
    "end": ("/test/a/b/c/d/.", "[ -d /out/test/a/b/c/d/e ]\n[ -f /out/test/a/b/c/d/foo ]"),
    "start": ("./test/a/b/c/d", "[ -d /out/test/a/b/c/d/e ]\n[ -f /out/test/a/b/c/d/foo ]"),
    "double": ("/test/a/./b/./c", "[ -d /out/b/c/d/e ]\n[ -f /out/b/c/d/foo ]"),
    "wildcard": ("/test/a/./*/c", "[ -d /out/b/c/d/e ]\n[ -f /out/b2/c/d/e/bar ]"),
    "doublewildcard": (
        "/test/a/b*/./c/**/e",
        "[ -d /out/c/d/e ]\n[ -f /out/c/d/e/bay ]\n[ -f /out/c/d/e/bar ]",
    ),
    "doubleinputs": (
        "/test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar",
        "[ -f /out/d/e/baz ]\n[ ! -f /out/d/e/bay ]\n[ -f /out/d/e2/baz ]\n[ -f /out/c/d/e/bar ]",
    ),
    # testCopyParentsMissingDirectory (its base has no b2 nor c2: here b3 and c3 match nothing)
    "normal": (
        "/test/a/b/c/d",
        "[ -d /out/test/a/b/c/d/e ]\n[ -f /out/test/a/b/c/d/e/bay ]\n"
        "[ ! -d /out/e ]\n[ ! -d /out/a ]",
    ),
    "wildcard-nonexistent": ("/test/a/b3*/c", "[ -d /out ]\n[ ! -d /out/a ]"),
    "wildcard-afterpivot": ("/test/a/b/./c3*", "[ -d /out ]\n[ ! -d /out/a ]\n[ ! -d /out/c* ]"),
}


def test_copy_parents(store_root: Path, tmp_path: Path) -> None:
    """testCopyRelativeParents, testCopyParentsMissingDirectory: the `/./` pivot of --parents,
    wildcards before and after it, and wildcards that match nothing. Every upstream target is
    a stage here; the last stage depends on them all, so one build runs their checks."""
    ctx = context_dir(tmp_path)
    text = PARENTS_BASE
    for name, (sources, checks) in PARENTS_STAGES.items():
        text += (
            f"FROM base:1 AS {name}\nCOPY --from=base --parents {sources} /out/\n"
            f"RUN <<eot\n\tset -ex\n\t" + checks.replace("\n", "\n\t") + "\neot\n"
        )
    text += "FROM scratch\n" + "".join(
        f"COPY --from={name} /out /{name}\n" for name in PARENTS_STAGES
    )
    (ctx / "Dockerfile").write_text(text)
    local_output(store_root, ctx, tmp_path / "out")
    (ctx / "Dockerfile").write_text(
        PARENTS_BASE + "FROM base:1\nCOPY --from=base --parents /test/nonexistent-file /out/\n"
    )
    err = _fails(store_root, ctx)
    assert '"/test/nonexistent-file": not found' in err, err
