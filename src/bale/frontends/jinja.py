"""Jinja2 Dockerfile templates: rendered once per target platform, then parsed as Dockerfiles.

The template runs in a sandbox with StrictUndefined and sees only:

* `platform` — `os`, `architecture`, `variant` and `string` (also its `str()`): the target;
* `build_args` — the `--build-arg` values;
* `env` — the variables passed with `--template-var NAME[=VALUE]` (each also a top-level name).

Nothing else from the process environment leaks in. Template errors are DockerfileErrors at
the template's own line; errors in the rendered Dockerfile name the template and platform.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from bale.errors import DockerfileError, SourceRange
from bale.frontends.dockerfile.parser import ParsedDockerfile, parse
from bale.oci.platform import Platform

TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
RESERVED = frozenset(("platform", "build_args", "env"))


@dataclass(frozen=True)
class TemplatePlatform:
    os: str
    architecture: str
    variant: str
    string: str

    def __str__(self) -> str:
        return self.string

    @classmethod
    def of(cls, platform: Platform) -> TemplatePlatform:
        return cls(platform.os, platform.architecture, platform.variant, str(platform))


def is_template(path: str | PurePath, frontend: str | None = None) -> bool:
    """`--frontend jinja` or a template suffix (`Dockerfile.j2`) selects this frontend."""
    if frontend:
        return frontend.lower() in ("jinja", "jinja2")
    return PurePath(str(path)).suffix.lower() in TEMPLATE_SUFFIXES


def _line_of(exc: BaseException, filename: str) -> int | None:
    line: int | None = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(
    source: str,
    *,
    platform: Platform,
    filename: str = "Dockerfile.j2",
    build_args: Mapping[str, str] | None = None,
    template_vars: Mapping[str, str] | None = None,
) -> str:
    """Render the template for one platform; DockerfileError at the template line on failure."""
    lines = tuple(source.splitlines())
    env_vars = dict(template_vars or {})
    for name in env_vars:
        if name in RESERVED:
            raise DockerfileError(
                f"template variable {name!r} clashes with a built-in name",
                hint="platform, build_args and env are provided by bale",
            )

    def fail(message: str, line: int | None) -> DockerfileError:
        source_range = None
        if line is not None and 1 <= line <= max(len(lines), 1):
            source_range = SourceRange(filename, line, line)
        return DockerfileError(
            f"failed to render template: {message}", source=source_range, lines=lines
        )

    # Imported here: plain Dockerfiles (most builds) never need the template engine.
    import jinja2
    import jinja2.sandbox

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        loader=jinja2.FunctionLoader(lambda _name: (source, filename, lambda: True)),
    )
    try:
        template = environment.get_template(filename)
    except jinja2.TemplateSyntaxError as exc:
        raise fail(exc.message or "syntax error", exc.lineno) from None
    context = {
        **env_vars,
        "platform": TemplatePlatform.of(platform),
        "build_args": dict(build_args or {}),
        "env": env_vars,
    }
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:
        raise fail(exc.message or type(exc).__name__, _line_of(exc, filename)) from None
    except RecursionError:
        raise fail("recursion too deep", None) from None
    except Exception as exc:  # a template expression failed (1/0, bad types, ...)
        raise fail(f"{type(exc).__name__}: {exc}", _line_of(exc, filename)) from None


def render_dockerfile(
    source: str,
    *,
    platform: Platform,
    filename: str = "Dockerfile.j2",
    build_args: Mapping[str, str] | None = None,
    template_vars: Mapping[str, str] | None = None,
) -> ParsedDockerfile:
    """Render for one platform and parse the result (named `<template> [<platform>]`)."""
    text = render(
        source,
        platform=platform,
        filename=filename,
        build_args=build_args,
        template_vars=template_vars,
    )
    return parse(text, f"{filename} [{platform}]")
