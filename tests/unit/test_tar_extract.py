"""Context tars are extracted confined with and without tarfile's filters (Debian 12's
Python 3.11.2 has none)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bale.cli.tar_extract import extract_confined


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _info(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


@pytest.fixture(params=["filters", "fallback"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fallback":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


def test_a_plain_context_is_extracted(mode: str, tmp_path: Path) -> None:
    data = _tar(
        (_info("dir", tarfile.DIRTYPE, mode=0o755), b""),
        (_info("dir/app.txt", mode=0o4755), b"app\n"),
        (_info("dir/link", tarfile.SYMTYPE, "app.txt"), b""),
    )
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        extract_confined(tar, tmp_path)
    assert (tmp_path / "dir" / "link").read_text() == "app\n"
    assert (tmp_path / "dir" / "app.txt").stat().st_mode & 0o7777 == 0o755  # no set-uid


@pytest.mark.parametrize(
    "member",
    [
        _info("../escape"),
        _info("l", tarfile.SYMTYPE, "/etc"),
        _info("l", tarfile.SYMTYPE, "../../etc"),
        _info("h", tarfile.LNKTYPE, "../outside"),
        _info("dev", tarfile.CHRTYPE),
    ],
    ids=["dotdot", "abs-link", "dotdot-link", "hardlink-out", "device"],
)
def test_a_member_leading_outside_is_refused(
    mode: str, member: tarfile.TarInfo, tmp_path: Path
) -> None:
    dest = tmp_path / "ctx"
    dest.mkdir()
    data = _tar((member, b""))
    with pytest.raises(tarfile.TarError), tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        extract_confined(tar, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx"]


def test_an_absolute_name_lands_inside(mode: str, tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(_tar((_info("/etc/x"), b"x"))), mode="r|") as tar:
        extract_confined(tar, tmp_path)
    assert (tmp_path / "etc" / "x").read_text() == "x"
