"""Jinja2 templates: per-platform rendering, sandboxing, and errors at the template's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bale.errors import DockerfileError
from bale.frontends import jinja
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import resolve
from bale.frontends.dockerfile.stages import load
from bale.frontends.load import dockerfiles_for, read_dockerfile
from bale.oci.platform import Platform

REPO = Path(__file__).resolve().parents[2]
ARM = Platform.parse("linux/arm/v7")
AMD = Platform.parse("linux/amd64")


def test_renders_per_platform() -> None:
    source = (
        "FROM alpine\n"
        "{% if platform.architecture == 'arm' %}RUN echo arm {{ platform.variant }}\n{% endif %}"
        "ENV P={{ platform }} OS={{ platform.os }} S={{ platform.string }}\n"
    )
    arm = jinja.render(source, platform=ARM)
    amd = jinja.render(source, platform=AMD)
    assert "RUN echo arm v7\n" in arm
    assert "RUN" not in amd
    assert "ENV P=linux/amd64 OS=linux S=linux/amd64\n" in amd


def test_build_args_and_template_vars_only() -> None:
    source = "FROM {{ build_args.BASE }}\nENV V={{ env.VERSION }} W={{ VERSION }}\n"
    out = jinja.render(
        source, platform=AMD, build_args={"BASE": "alpine"}, template_vars={"VERSION": "3"}
    )
    assert out == "FROM alpine\nENV V=3 W=3\n"


def test_undefined_name_is_an_error_at_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME_SECRET", "x")
    source = "FROM alpine\n\nRUN echo {{ HOME_SECRET }}\n"
    with pytest.raises(DockerfileError) as info:
        jinja.render(source, platform=AMD, filename="app.j2")
    err = info.value
    assert err.message == "failed to render template: 'HOME_SECRET' is undefined"
    assert err.source is not None and (err.source.filename, err.source.start) == ("app.j2", 3)
    assert err.lines == ("FROM alpine", "", "RUN echo {{ HOME_SECRET }}")


def test_syntax_error_line() -> None:
    with pytest.raises(DockerfileError) as info:
        jinja.render("FROM a\n\nRUN {{ x + }}\n", platform=AMD)
    assert info.value.source is not None and info.value.source.start == 3
    assert "failed to render template" in info.value.message


def test_sandbox_blocks_attribute_escapes() -> None:
    with pytest.raises(DockerfileError) as info:
        jinja.render("FROM a\n{{ platform.__class__.__mro__ }}\n", platform=AMD)
    assert info.value.source is not None and info.value.source.start == 2
    with pytest.raises(DockerfileError):
        jinja.render("{{ ''.__class__.__subclasses__() }}", platform=AMD)


def test_runtime_errors_in_expressions_are_dockerfile_errors() -> None:
    with pytest.raises(DockerfileError) as info:
        jinja.render("FROM a\nRUN echo {{ 1 // 0 }}\n", platform=AMD)
    assert "ZeroDivisionError" in info.value.message
    assert info.value.source is not None and info.value.source.start == 2


def test_reserved_template_var() -> None:
    with pytest.raises(DockerfileError):
        jinja.render("FROM a\n", platform=AMD, template_vars={"platform": "x"})


def test_detection() -> None:
    assert jinja.is_template("Dockerfile.j2")
    assert jinja.is_template("x/app.jinja")
    assert not jinja.is_template("Dockerfile")
    assert jinja.is_template("Dockerfile", "jinja")
    assert not jinja.is_template("Dockerfile.j2", "dockerfile")


def test_rendered_dockerfile_errors_name_template_and_platform() -> None:
    with pytest.raises(DockerfileError) as info:
        load(
            jinja.render_dockerfile(
                "FROM a\nRUNN {{ platform.architecture }}\n", platform=ARM, filename="Dockerfile.j2"
            )
        )
    assert info.value.source is not None
    assert info.value.source.filename == "Dockerfile.j2 [linux/arm/v7]"
    assert info.value.message.endswith("unknown instruction: RUNN (did you mean RUN?)")


def test_example_renders_and_resolves_for_two_platforms() -> None:
    example = REPO / "examples" / "jinja"
    source = read_dockerfile(example, str(example / "Dockerfile.j2"))
    assert source.template
    files = dockerfiles_for(source, [AMD, ARM], build_args={"CHANNEL": "beta"})
    envs = {}
    for platform, parsed in files.items():
        b = resolve(parsed, target_platform=platform, build_args={"CHANNEL": "beta"})
        runs = [s for s in b.target.steps if isinstance(s.instruction, ins.Run)]
        envs[str(platform)] = (dict(b.target.config.env_map()), len(runs))
    assert envs["linux/amd64"][0]["APP_ARCH"] == "amd64"
    assert envs["linux/arm/v7"][0]["APP_ARCH"] == "armv7"
    assert envs["linux/arm/v7"][0]["APP_CHANNEL"] == "beta"
    # The arm-only RUN is rendered for arm/v7 alone.
    assert (envs["linux/amd64"][1], envs["linux/arm/v7"][1]) == (2, 3)
