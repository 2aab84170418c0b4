"""One test per hostile-layer class: nothing is ever written outside the target directory."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from exechelp import make_tar, member

from bale.errors import InvalidArgument
from bale.store.layers import apply_layer


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(target rootfs, outside directory holding a precious file)."""
    target = tmp_path / "jail" / "rootfs"
    target.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    return target, outside


def listing(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def assert_outside_untouched(outside: Path, jail_parent: Path) -> None:
    assert listing(outside) == {"precious"}
    assert (outside / "precious").read_text() == "keep me"
    assert os.stat(outside / "precious").st_nlink == 1
    # Nothing next to the rootfs either.
    assert sorted(os.listdir(jail_parent)) == ["rootfs"]


def test_dotdot_names_stay_inside(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member("../escaped"), b"x"),
            (member("../../outside/precious"), b"overwritten"),
            (member("a/../../../../b"), b"y"),
        ]
    )
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)
    assert (target / "escaped").read_bytes() == b"x"
    assert (target / "outside" / "precious").read_bytes() == b"overwritten"
    assert (target / "b").read_bytes() == b"y"


def test_absolute_names_stay_inside(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member(str(outside / "precious")), b"overwritten"),
            (member(str(outside / "new")), b"new"),
        ]
    )
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)
    inside = target / str(outside).lstrip("/")
    assert (inside / "precious").read_bytes() == b"overwritten"
    assert (inside / "new").read_bytes() == b"new"


def test_symlink_pointing_out_is_followed_inside(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member("abs", tarfile.SYMTYPE, str(outside)), None),
            (member("rel", tarfile.SYMTYPE, "../../../../../../" + str(outside).lstrip("/")), None),
            (member("abs/precious"), b"through absolute link"),
            (member("rel/other"), b"through relative link"),
        ]
    )
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)
    inside = target / str(outside).lstrip("/")
    assert (inside / "precious").read_bytes() == b"through absolute link"
    assert (inside / "other").read_bytes() == b"through relative link"
    # The links themselves are kept as written: they point out only when followed on the host.
    assert os.readlink(target / "abs") == str(outside)


def test_hardlink_pointing_out_is_refused(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    for linkname in (str(outside / "precious"), "../../outside/precious"):
        layer = make_tar([(member("stolen", tarfile.LNKTYPE, linkname), None)])
        with pytest.raises(InvalidArgument, match="not there"):
            apply_layer(layer, target)
        assert not os.path.lexists(target / "stolen")
    assert_outside_untouched(outside, target.parent)


def test_hardlink_through_symlinked_parent_is_refused(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member("door", tarfile.SYMTYPE, str(outside)), None),
            (member("stolen", tarfile.LNKTYPE, "door/precious"), None),
        ]
    )
    with pytest.raises(InvalidArgument):
        apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)


def test_file_written_over_a_symlink_replaces_the_link(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member("victim", tarfile.SYMTYPE, str(outside / "precious")), None),
            (member("victim"), b"written through?"),
        ]
    )
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)
    assert not (target / "victim").is_symlink()
    assert (target / "victim").read_bytes() == b"written through?"


def test_existing_symlink_in_rootfs_is_not_written_through(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    # A lower layer left a link to the host's file (as a hostile image would).
    os.symlink(str(outside / "precious"), target / "etc-passwd")
    os.symlink(str(outside), target / "dir-link")
    layer = make_tar([(member("etc-passwd"), b"pwned"), (member("dir-link/x"), b"pwned")])
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)


def test_whiteout_through_symlink_deletes_nothing_outside(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member("door", tarfile.SYMTYPE, str(outside)), None),
            (member("door/.wh.precious"), b""),
            (member("../.wh.outside"), b""),
            (member("../../.wh.outside"), b""),
            (member(".wh.."), b""),  # names the parent: refused
        ]
    )
    with pytest.raises(InvalidArgument):
        apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)


def test_opaque_marker_through_symlink_stays_inside(sandbox: tuple[Path, Path]) -> None:
    target, outside = sandbox
    layer = make_tar(
        [
            (member("door", tarfile.SYMTYPE, str(outside)), None),
            (member("door/.wh..wh..opq"), b""),
        ]
    )
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)


def test_directory_swapped_for_a_link_mid_layer_is_not_written_through(
    sandbox: tuple[Path, Path],
) -> None:
    target, outside = sandbox
    # Resolved parents are remembered while a layer is applied; replacing a directory or a
    # link with a link to the host must make its children resolve again, inside the root.
    os.mkdir(target / "one")
    os.symlink("one", target / "hop")
    layer = make_tar(
        [
            (member("dir", tarfile.DIRTYPE, mode=0o755), None),
            (member("dir/a"), b"a"),
            (member("dir", tarfile.SYMTYPE, str(outside)), None),
            (member("dir/precious"), b"through a swapped dir"),
            (member("hop/b"), b"b"),
            (member("hop", tarfile.SYMTYPE, str(outside)), None),
            (member("hop/precious"), b"through a swapped link"),
        ]
    )
    apply_layer(layer, target)
    assert_outside_untouched(outside, target.parent)
    inside = target / str(outside).lstrip("/")
    assert (inside / "precious").read_bytes() == b"through a swapped link"
    assert (target / "one" / "b").read_bytes() == b"b"
    assert os.readlink(target / "dir") == str(outside)
