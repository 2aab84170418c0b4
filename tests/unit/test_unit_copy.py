"""COPY and ADD planning without root: what lands where in the layer (wildcards, --parents,
--exclude, --chown/--chmod, symlinks on the destination path, .dockerignore)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from unithelp import Entry, Project, files_of, layer_entries

from bale.errors import BaleError


def _files(project: Project, dockerfile: str, **kw: object) -> dict[str, Entry]:
    return files_of(project, project.build(dockerfile, **kw))


def _regular(files: dict[str, Entry]) -> dict[str, bytes]:
    return {n: e.data for n, e in files.items() if e.type == "file"}


@pytest.fixture
def tree(project: Project) -> Project:
    project.write("a.txt", "A")
    project.write("b.txt", "B")
    project.write("c.log", "C")
    project.write("src/x/one.txt", "1")
    project.write("src/y/two.txt", "2")
    project.write("src/y/skip.log", "L")
    return project


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("COPY a.txt /a", {"a": b"A"}),
        ("COPY a.txt /dir/", {"dir/a.txt": b"A"}),
        ("COPY a.txt b.txt /dir/", {"dir/a.txt": b"A", "dir/b.txt": b"B"}),
        ("COPY *.txt /out/", {"out/a.txt": b"A", "out/b.txt": b"B"}),
        ("COPY ?.log /out/", {"out/c.log": b"C"}),
        ("COPY [ab].txt /out/", {"out/a.txt": b"A", "out/b.txt": b"B"}),
        ("COPY src /s", {"s/x/one.txt": b"1", "s/y/two.txt": b"2", "s/y/skip.log": b"L"}),
        ("COPY src/x /s/", {"s/one.txt": b"1"}),
        ("COPY src/*/one.txt /o/", {"o/one.txt": b"1"}),
        ("COPY --exclude=**/*.log src /s", {"s/x/one.txt": b"1", "s/y/two.txt": b"2"}),
        (
            "COPY --exclude=*.log src /s",
            {"s/x/one.txt": b"1", "s/y/two.txt": b"2", "s/y/skip.log": b"L"},
        ),
        ("COPY --exclude=y src /s", {"s/x/one.txt": b"1"}),
        ("COPY --exclude=**/*.log --exclude=x src /s", {"s/y/two.txt": b"2"}),
        ("COPY --exclude=c.* *.* /o/", {"o/a.txt": b"A", "o/b.txt": b"B"}),
        (
            "COPY --parents src/*/*.txt /p/",
            {"p/src/x/one.txt": b"1", "p/src/y/two.txt": b"2"},
        ),
        ("COPY --parents a.txt /p/", {"p/a.txt": b"A"}),
        ("WORKDIR /app\nCOPY a.txt .", {"app/a.txt": b"A"}),
        ("WORKDIR /app\nCOPY a.txt sub/", {"app/sub/a.txt": b"A"}),
        ("ENV D=/env\nCOPY a.txt $D/", {"env/a.txt": b"A"}),
        ("ARG NAME=a\nCOPY ${NAME}.txt /", {"a.txt": b"A"}),
    ],
)
def test_copy_places_files(tree: Project, line: str, expected: dict[str, bytes]) -> None:
    assert _regular(_files(tree, f"FROM scratch\n{line}\n")) == expected


def test_copy_makes_the_parent_directories_of_the_destination(tree: Project) -> None:
    files = _files(tree, "FROM scratch\nCOPY a.txt /deep/er/a\n")
    assert files["deep"].type == files["deep/er"].type == "dir"
    assert files["deep"].mode == 0o755


@pytest.mark.parametrize(
    ("flags", "uid", "gid"),
    [("", 0, 0), ("--chown=5", 5, 5), ("--chown=5:6", 5, 6), ("--chown=0:7", 0, 7)],
)
def test_chown_sets_the_owner_of_what_is_copied(
    tree: Project, flags: str, uid: int, gid: int
) -> None:
    files = _files(tree, f"FROM scratch\nCOPY {flags} src/x /s\n")
    assert (files["s/one.txt"].uid, files["s/one.txt"].gid) == (uid, gid)
    assert (files["s"].uid, files["s"].gid) == (uid, gid)


def test_chown_by_name_reads_the_images_passwd_and_group(project: Project) -> None:
    project.write("passwd", "root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\n")
    project.write("group", "root:x:0:\nstaff:x:50:\n")
    project.write("a.txt", "A")
    files = _files(
        project,
        "FROM scratch\nCOPY passwd group /etc/\nCOPY --chown=app:staff a.txt /a\n",
    )
    assert (files["a"].uid, files["a"].gid) == (1234, 50)


def test_chown_to_an_unknown_user_is_an_error(project: Project) -> None:
    project.write("a.txt", "A")
    with pytest.raises(BaleError, match="nobody-here"):
        project.build("FROM scratch\nCOPY --chown=nobody-here a.txt /a\n")


@pytest.mark.parametrize(("chmod", "mode"), [("0600", 0o600), ("755", 0o755), ("4755", 0o4755)])
def test_chmod_sets_the_mode_of_the_copied_files(tree: Project, chmod: str, mode: int) -> None:
    files = _files(tree, f"FROM scratch\nCOPY --chmod={chmod} a.txt src/x/one.txt /s/\n")
    assert files["s/a.txt"].mode == files["s/one.txt"].mode == mode


def test_without_chmod_the_context_mode_is_kept(project: Project) -> None:
    project.write("run.sh", "#!/bin/sh\n", mode=0o755)
    project.write("data", "d", mode=0o640)
    files = _files(project, "FROM scratch\nCOPY run.sh data /o/\n")
    assert files["o/run.sh"].mode == 0o755
    assert files["o/data"].mode == 0o640


def test_context_files_land_root_owned(project: Project) -> None:
    path = project.write("a.txt", "A")
    if os.geteuid() == 0:
        os.chown(path, 4321, 4321)
    files = _files(project, "FROM scratch\nCOPY a.txt /a\n")
    assert (files["a"].uid, files["a"].gid) == (0, 0)


def test_a_symlink_in_the_context_is_copied_as_a_symlink(project: Project) -> None:
    project.write("d/real", "R")
    os.symlink("real", project.context / "d" / "link")
    files = _files(project, "FROM scratch\nCOPY d /d\n")
    assert files["d/link"].type == "symlink" and files["d/link"].link == "real"


def test_copy_through_a_symlinked_directory_writes_into_its_target(project: Project) -> None:
    project.write("a.txt", "A")
    files = _files(
        project,
        "FROM scratch\nRUN mkdir /real && ln /real /link\nCOPY a.txt /link/\n",
    )
    assert files["real/a.txt"].data == b"A"
    assert files["link"].type == "symlink"


def test_copy_through_an_absolute_symlink_stays_in_the_rootfs(project: Project) -> None:
    project.write("a.txt", "A")
    files = _files(
        project,
        "FROM scratch\nRUN mkdir /target && ln /target /abs\nCOPY a.txt /abs/a\n",
    )
    assert files["target/a"].data == b"A"


def test_copy_through_an_escaping_symlink_stays_in_the_rootfs(project: Project) -> None:
    project.write("a.txt", "A")
    files = _files(
        project,
        "FROM scratch\nRUN mkdir /in && ln ../../../../in /up\nCOPY a.txt /up/a\n",
    )
    assert files["in/a"].data == b"A"


def test_copy_onto_a_file_replaces_it(project: Project) -> None:
    project.write("a.txt", "new")
    built = project.build("FROM scratch\nRUN write /a old\nCOPY a.txt /a\n")
    assert files_of(project, built)["a"].data == b"new"
    assert set(layer_entries(project, built.layers()[-1])) == {"a"}


def test_a_removed_file_becomes_a_whiteout(project: Project) -> None:
    built = project.build("FROM scratch\nRUN write /gone x && write /kept y\nRUN rm /gone\n")
    last = layer_entries(project, built.layers()[-1])
    assert last[".wh.gone"].type == "whiteout"
    assert set(_regular(files_of(project, built))) == {"kept"}


def test_copy_from_another_stage(project: Project) -> None:
    files = _files(
        project,
        "FROM scratch AS build\nRUN write /out/bin built\n"
        "FROM scratch\nCOPY --from=build /out/bin /usr/bin/app\n",
    )
    assert _regular(files) == {"usr/bin/app": b"built"}


def test_copy_from_a_stage_by_index(project: Project) -> None:
    files = _files(project, "FROM scratch\nRUN write /f one\nFROM scratch\nCOPY --from=0 /f /g\n")
    assert _regular(files) == {"g": b"one"}


def test_copy_a_heredoc(project: Project) -> None:
    files = _files(project, "FROM scratch\nCOPY <<EOF /etc/conf\nkey=value\nEOF\n")
    assert files["etc/conf"].data == b"key=value\n"


def test_copy_of_a_missing_file_names_it_and_the_line(project: Project) -> None:
    with pytest.raises(BaleError) as caught:
        project.build("FROM scratch\nCOPY missing.txt /m\n")
    assert "missing.txt" in str(caught.value)
    assert getattr(caught.value, "source", None) is not None


def test_a_wildcard_matching_nothing_copies_nothing(project: Project) -> None:
    # BuildKit's AllowEmptyWildcard (testEmptyWildcard): no error, the destination is made.
    project.write("a.txt", "A")
    files = _files(project, "FROM scratch\nCOPY a.txt *.none /m/\n")
    assert _regular(files) == {"m/a.txt": b"A"}
    assert "m" in files and files["m"].type == "dir"


def test_copy_of_several_files_to_a_non_directory_is_an_error(tree: Project) -> None:
    with pytest.raises(BaleError, match="/"):
        tree.build("FROM scratch\nCOPY a.txt b.txt /single\n")


def test_copy_from_outside_the_context_stays_inside(tree: Project) -> None:
    files = _files(tree, "FROM scratch\nCOPY ../../a.txt /a\n")
    assert _regular(files) == {"a": b"A"}


@pytest.mark.parametrize(
    ("ignore", "expected"),
    [
        # As in Docker, a pattern without ** matches at the top only.
        (
            "*.log\n",
            {"o/a.txt", "o/b.txt", "o/src/x/one.txt", "o/src/y/two.txt", "o/src/y/skip.log"},
        ),
        ("**/*.log\n", {"o/a.txt", "o/b.txt", "o/src/x/one.txt", "o/src/y/two.txt"}),
        ("src\n", {"o/a.txt", "o/b.txt", "o/c.log"}),
        ("src\n!src/x\n", {"o/a.txt", "o/b.txt", "o/c.log", "o/src/x/one.txt"}),
        ("**/*.txt\n", {"o/c.log", "o/src/y/skip.log"}),
        ("*\n!a.txt\n", {"o/a.txt"}),
        ("# only a comment\n", None),
    ],
)
def test_dockerignore_leaves_files_out_of_copies(
    tree: Project, ignore: str, expected: set[str] | None
) -> None:
    tree.write(".dockerignore", ignore)
    files = set(_regular(_files(tree, "FROM scratch\nCOPY . /o/\n")))
    files.discard("o/.dockerignore")
    everything = {"o/a.txt", "o/b.txt", "o/c.log", "o/src/x/one.txt", "o/src/y/two.txt"}
    assert files == (expected if expected is not None else everything | {"o/src/y/skip.log"})


def test_an_ignored_file_named_by_copy_is_not_found(project: Project) -> None:
    project.write("secret.key", "k")
    project.write(".dockerignore", "secret.key\n")
    with pytest.raises(BaleError, match=r"secret\.key"):
        project.build("FROM scratch\nCOPY secret.key /k\n")


def test_editing_an_ignored_file_keeps_the_copy_cached(project: Project) -> None:
    project.write("a.txt", "A")
    project.write("noise.log", "1")
    project.write(".dockerignore", "*.log\n")
    project.build("FROM scratch\nCOPY . /o/\n")
    project.write("noise.log", "2")
    built = project.build("FROM scratch\nCOPY . /o/\n")
    assert built.sink.of("start") == []


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_add_extracts_a_local_archive(project: Project) -> None:
    project.write("pkg.tar.gz", _tar({"pkg/one": b"1", "pkg/two": b"2"}))
    files = _files(project, "FROM scratch\nADD pkg.tar.gz /opt/\n")
    assert _regular(files) == {"opt/pkg/one": b"1", "opt/pkg/two": b"2"}


def test_copy_does_not_extract_an_archive(project: Project) -> None:
    data = _tar({"pkg/one": b"1"})
    project.write("pkg.tar.gz", data)
    files = _files(project, "FROM scratch\nCOPY pkg.tar.gz /opt/\n")
    assert _regular(files) == {"opt/pkg.tar.gz": data}


def test_add_of_a_plain_file_copies_it(project: Project) -> None:
    project.write("plain.txt", "P")
    assert _regular(_files(project, "FROM scratch\nADD plain.txt /p\n")) == {"p": b"P"}


@pytest.mark.root  # ADD writes into the snapshot's files: owners other than one's own need root
def test_add_chown_applies_to_extracted_files_too(project: Project) -> None:
    project.write("a.txt", "A")
    files = _files(project, "FROM scratch\nADD --chown=9:9 a.txt /a\n")
    assert (files["a"].uid, files["a"].gid) == (9, 9)
