"""Reading the Dockerfile a build names and turning it into one parsed file per platform."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bale.errors import InvalidArgument, NotFound
from bale.frontends import jinja
from bale.frontends.dockerfile.parser import ParsedDockerfile, parse
from bale.oci.platform import Platform


@dataclass(frozen=True)
class DockerfileSource:
    """The Dockerfile text, the name errors show, its path (None for stdin), and whether it
    is a Jinja2 template."""

    text: str
    name: str
    path: Path | None
    template: bool


def read_dockerfile(
    context: Path, file: str | None = None, frontend: str | None = None
) -> DockerfileSource:
    """`-f` as buildx reads it: a path relative to the working directory, `-` for stdin, or
    `<context>/Dockerfile` (else `<context>/dockerfile`) when not given."""
    if frontend and frontend.lower() not in ("dockerfile", "jinja", "jinja2"):
        raise InvalidArgument(
            f"unknown frontend {frontend!r}", hint="use --frontend dockerfile or jinja"
        )
    if file == "-":
        text = sys.stdin.read()
        return DockerfileSource(text, "Dockerfile", None, jinja.is_template("-", frontend))
    path = Path(file) if file else context / "Dockerfile"
    if not file and not path.exists() and (context / "dockerfile").is_file():
        path = context / "dockerfile"  # BuildKit's fallback to the lowercase name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"failed to read dockerfile: open {path}: no such file or directory"
        ) from None
    except IsADirectoryError:
        raise InvalidArgument(f"failed to read dockerfile: {path} is a directory") from None
    except OSError as exc:
        raise InvalidArgument(f"failed to read dockerfile {path}: {exc.strerror}") from None
    text = data.decode("utf-8", errors="replace")
    template = jinja.is_template(path, frontend) if frontend != "dockerfile" else False
    return DockerfileSource(text, path.name, path, template)


def dockerfiles_for(
    source: DockerfileSource,
    platforms: Sequence[Platform],
    *,
    build_args: Mapping[str, str] | None = None,
    template_vars: Mapping[str, str] | None = None,
) -> dict[Platform, ParsedDockerfile]:
    """One parsed Dockerfile per target platform (templates render once per platform; a
    plain Dockerfile is parsed once and shared)."""
    if not source.template:
        parsed = parse(source.text, source.name)
        return {p: parsed for p in platforms}
    return {
        p: jinja.render_dockerfile(
            source.text,
            platform=p,
            filename=source.name,
            build_args=build_args,
            template_vars=template_vars,
        )
        for p in platforms
    }
