"""Reading `-f` the way buildx does, and one parsed Dockerfile per platform."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bale.errors import InvalidArgument, NotFound
from bale.frontends.load import dockerfiles_for, read_dockerfile
from bale.oci.platform import Platform

AMD = Platform.parse("linux/amd64")
ARM = Platform.parse("linux/arm64")


def test_default_path_and_explicit_file(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    source = read_dockerfile(tmp_path)
    assert (source.text, source.name, source.template) == ("FROM a\n", "Dockerfile", False)
    other = tmp_path / "build" / "app.Dockerfile"
    other.parent.mkdir()
    other.write_text("FROM b\n")
    assert read_dockerfile(tmp_path, str(other)).name == "app.Dockerfile"


def test_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("FROM c\n"))
    source = read_dockerfile(tmp_path, "-")
    assert (source.text, source.path) == ("FROM c\n", None)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as info:
        read_dockerfile(tmp_path)
    assert "failed to read dockerfile" in info.value.message
    with pytest.raises(InvalidArgument):
        read_dockerfile(tmp_path, str(tmp_path))
    with pytest.raises(InvalidArgument):
        read_dockerfile(tmp_path, None, "buildpacks")


def test_plain_dockerfile_is_parsed_once_for_all_platforms(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\n")
    files = dockerfiles_for(read_dockerfile(tmp_path), [AMD, ARM])
    assert files[AMD] is files[ARM]


def test_template_renders_per_platform(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile.j2"
    path.write_text("FROM base-{{ platform.architecture }}\n")
    files = dockerfiles_for(read_dockerfile(tmp_path, str(path)), [AMD, ARM])
    assert files[AMD].lines == ("FROM base-amd64",)
    assert files[ARM].lines == ("FROM base-arm64",)
    forced = read_dockerfile(tmp_path, str(path), "dockerfile")
    assert not forced.template
