"""Cache keys without root: the same inputs give the same keys anywhere (another checkout,
another store, other mtimes), and each input that decides a step's result changes them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from unithelp import Project

from bale.builder.cachekey import layers_key, state_key
from bale.builder.explain import KeyParts
from bale.builder.state import LayerRef
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest

DOCKERFILE = (
    "FROM scratch\nARG V=1\nCOPY app /app\nRUN write /built $V\n"
    "FROM scratch\nCOPY --from=0 /built /b\n"
)


def _keys(project: Project, dockerfile: str = DOCKERFILE, **kw: object) -> list[str]:
    return [s.key for s in project.build(dockerfile, **kw).result.steps]


@pytest.fixture
def app(project: Project) -> Project:
    project.write("app/main.py", "print(1)\n")
    project.write("app/lib/util.py", "X = 1\n", mode=0o644)
    os.symlink("main.py", project.context / "app" / "entry")
    return project


def test_the_same_build_in_another_checkout_and_store_has_the_same_keys(
    app: Project, tmp_path: Path
) -> None:
    elsewhere = app.tmp / "other" / "checkout"
    elsewhere.mkdir(parents=True)
    copy = Project(elsewhere)
    shutil.rmtree(copy.context)
    shutil.copytree(app.context, copy.context, symlinks=True)
    # SOURCE_DATE_EPOCH: the layers of both are the same bytes, so every later key is too
    # (without it a directory a step makes carries the second it was made in).
    epoch = {"SOURCE_DATE_EPOCH": "1000"}
    assert _keys(app, build_args=epoch) == _keys(copy, build_args=epoch)


def test_a_copy_from_the_context_has_the_same_key_in_another_checkout(
    app: Project, tmp_path: Path
) -> None:
    copy = Project(app.tmp / "elsewhere")
    shutil.rmtree(copy.context)
    shutil.copytree(app.context, copy.context, symlinks=True)
    for path in (copy.context / "app").rglob("*"):
        if not path.is_symlink():
            os.utime(path, (99, 99))  # a fresh clone: other mtimes
    assert _keys(app)[0] == _keys(copy)[0]


def test_mtimes_do_not_count(app: Project) -> None:
    before = _keys(app)
    for path in (app.context / "app").rglob("*"):
        if not path.is_symlink():
            os.utime(path, (12345, 12345))
    assert _keys(app) == before


def test_keys_are_stable_across_builds(app: Project) -> None:
    assert _keys(app) == _keys(app)


def _first_key_change(app: Project, change: object) -> tuple[list[str], list[str]]:
    before = _keys(app)
    assert callable(change)
    change()
    return before, _keys(app)


@pytest.mark.parametrize(
    "what",
    ["content", "mode", "new-file", "rename", "link-target", "remove"],
)
def test_each_change_to_copied_files_changes_the_copy_key(app: Project, what: str) -> None:
    root = app.context / "app"

    def change() -> None:
        if what == "content":
            (root / "main.py").write_text("print(2)\n")
        elif what == "mode":
            (root / "lib" / "util.py").chmod(0o755)
        elif what == "new-file":
            (root / "new.txt").write_text("n")
        elif what == "rename":
            (root / "main.py").rename(root / "main2.py")
        elif what == "link-target":
            (root / "entry").unlink()
            os.symlink("lib/util.py", root / "entry")
        elif what == "remove":
            (root / "lib" / "util.py").unlink()

    before, after = _first_key_change(app, change)
    assert before[0] != after[0]  # the COPY
    assert before[1] != after[1]  # and the RUN built on it


def test_a_file_outside_what_is_copied_does_not_count(app: Project) -> None:
    before = _keys(app)
    app.write("README", "unrelated")
    assert _keys(app) == before


def test_a_used_build_arg_changes_the_run_key_only(app: Project) -> None:
    one = _keys(app, build_args={"V": "1"})
    two = _keys(app, build_args={"V": "2"})
    assert one[0] == two[0]
    assert one[1] != two[1]


def test_the_platform_counts_for_a_run_not_a_context_copy(app: Project) -> None:
    amd = _keys(app, platforms=("linux/amd64",))
    arm = _keys(app, platforms=("linux/arm64",))
    assert amd[0] == arm[0]
    assert amd[1] != arm[1]


def test_a_copy_from_a_stage_counts_its_files_not_its_key(app: Project) -> None:
    one = _keys(app)
    # Another command that makes the same file: the RUN's key changes, the copy's does not.
    other = DOCKERFILE.replace("RUN write /built $V", "RUN write /built $V && exit 0")
    two = _keys(app, other)
    assert one[1] != two[1]
    assert one[2] == two[2]


def test_a_copy_from_a_stage_with_other_files_changes(app: Project) -> None:
    one = _keys(app, build_args={"V": "1"})
    two = _keys(app, build_args={"V": "2"})
    assert one[2] != two[2]


def _layer(
    diff: str, digest: str, media: str = "application/vnd.oci.image.layer.v1.tar+gzip"
) -> LayerRef:
    return LayerRef(
        Descriptor(media, Digest("sha256", digest * 64), 10), Digest("sha256", diff * 64)
    )


def test_a_base_images_key_is_its_diff_ids_only() -> None:
    gzip = _layer("a", "1")
    zstd = _layer("a", "2", "application/vnd.oci.image.layer.v1.tar+zstd")
    assert layers_key([gzip]) == layers_key([zstd])
    assert layers_key([gzip]) != layers_key([_layer("b", "1")])
    assert layers_key([gzip, _layer("b", "1")]) != layers_key([_layer("b", "1"), gzip])
    assert layers_key([]) != layers_key([gzip])


def test_a_states_key_is_its_step_and_layer() -> None:
    step = "sha256:" + "c" * 64
    assert state_key(step, _layer("a", "1")) == state_key(step, _layer("a", "9"))
    assert state_key(step, _layer("a", "1")) != state_key(step, _layer("b", "1"))
    assert state_key(step, None) != state_key(step, _layer("a", "1"))
    assert state_key(step, None) != state_key("sha256:" + "d" * 64, None)


def test_key_parts_round_trip() -> None:
    parts = KeyParts({"argv": "x", "env:A": "y"}, ("k1", "k2"), "c", {"a.txt": "d"})
    head, files = parts.encode()
    assert KeyParts.decode(head, files) == parts


@pytest.mark.parametrize("head", ["", "{", "[]", '{"fields": 1}', '{"fields": {}, "inputs": []}'])
def test_unreadable_key_parts_explain_nothing(head: str) -> None:
    assert KeyParts.decode(head, None) is None


def test_key_parts_with_a_corrupt_file_list_decode_as_none() -> None:
    head, _ = KeyParts({}, (), "c").encode()
    assert KeyParts.decode(head, b"not zlib") is None


def test_the_step_history_keeps_no_value_it_explains_with(project: Project) -> None:
    secret = "hunter2-value"
    project.write("f", secret)
    project.build(
        "FROM scratch\nARG TOKEN\nCOPY f /f\nRUN write /x $TOKEN\n", build_args={"TOKEN": secret}
    )
    import zlib

    with project.store.meta.transaction() as db:
        rows = db.execute("SELECT * FROM step_history").fetchall()
    assert rows
    dump = repr(rows) + "".join(
        zlib.decompress(c).decode() for r in rows for c in r if isinstance(c, bytes)
    )
    assert secret not in dump
