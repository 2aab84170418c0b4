"""JSON and Compose definitions, from buildx's hcl_test.go, bake_test.go and compose_test.go."""

from __future__ import annotations

from pathlib import Path

import pytest
from bakehelp import parse, plan, target

from bale.errors import BakeError


def test_json_basic() -> None:
    """TestHCLBasicInJSON."""
    d = parse(
        (
            "docker-bake.json",
            """{
  "group": {"default": {"targets": ["db", "webapp"]}},
  "target": {
    "db": {"context": "./db", "tags": ["docker.io/tonistiigi/db"]},
    "webapp": {"context": "./dir", "dockerfile": "Dockerfile-alternate", "args": {"buildno": "123"}},
    "webapp-plus": {"inherits": ["webapp"], "args": {"IAMCROSS": "true"}}
  }
}""",
        )
    )
    assert d.groups[0].targets == ["db", "webapp"]
    assert target(d, "webapp").args == {"buildno": "123"}
    assert plan(d, ["webapp-plus"]).targets["webapp-plus"].args == {
        "buildno": "123",
        "IAMCROSS": "true",
    }


def test_json_templates_functions_and_null(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestJSONAttributes, TestJSONFunctions, TestJSONNullVariables, TestJSONInvalidFunctions."""
    d = parse(
        (
            "docker-bake.json",
            r"""{"FOO": "abc", "variable": {"BAR": {"default": "def"}, "N": {"default": null}},
 "function": {"myfunc": {"params": ["inp"], "result": "<${upper(inp)}-${FOO}>"}},
 "target": {"app": {"args": {"v1": "pre-${FOO}-${BAR}", "v2": "pre-${myfunc(\"foo\")}", "v3": "${N}", "v4": "myfunc(\"foo\")"}}}}""",
        )
    )
    assert target(d, "app").args == {
        "v1": "pre-abc-def",
        "v2": "pre-<FOO-abc>",
        "v3": None,
        "v4": 'myfunc("foo")',
    }


def test_hcl_and_json_targets_merge() -> None:
    """TestCombineHCLAndJSONTargets: array-form JSON blocks."""
    d = parse(
        (
            "docker-bake.hcl",
            'target "metadata-a" {}\ntarget "a" {\n inherits = ["metadata-a"]\n target = "a"\n}',
        ),
        (
            "metadata-a.json",
            '{"target": [{"metadata-a": [{"tags": ["app/a:1.0.0", "app/a:latest"]}]}]}',
        ),
    )
    assert plan(d, ["a"]).targets["a"].tags == ("app/a:1.0.0", "app/a:latest")


def test_compose_services() -> None:
    """TestParseCompose."""
    d = parse(
        (
            "docker-compose.yml",
            """
services:
  db:
    build: ./db
    image: docker.io/tonistiigi/db
  webapp:
    build:
      context: ./dir
      additional_contexts:
        foo: ./bar
      dockerfile: Dockerfile-alternate
      network: none
      args:
        buildno: 123
      cache_from:
        - type=local,src=path/to/cache
      extra_hosts: ["somehost:162.242.195.82", "somehost:162.242.195.83", "myhostv6:::1"]
      ssh: [key=/path/to/key, default]
      secrets: [token, aws]
secrets:
  token:
    environment: ENV_TOKEN
  aws:
    file: /root/.aws/credentials
""",
        )
    )
    db, web = target(d, "db"), target(d, "webapp")
    assert (db.context, db.tags) == ("db", ["docker.io/tonistiigi/db"])
    assert web.context == "dir" and web.contexts == {"foo": "bar"}
    assert web.args == {"buildno": "123"} and web.network == "none"
    assert [c.string() for c in web.cache_from] == ["type=local,src=path/to/cache"]
    assert web.extra_hosts == {"somehost": "162.242.195.82,162.242.195.83", "myhostv6": "::1"}
    assert [s.string() for s in web.ssh] == ["default", "key=/path/to/key"]
    assert sorted(s.string() for s in web.secret) == [
        "id=aws,src=/root/.aws/credentials",
        "id=token,env=ENV_TOKEN",
    ]


def test_compose_x_bake_and_sizes() -> None:
    """TestComposeExt."""
    d = parse(
        (
            "compose.yml",
            """
services:
  addon:
    image: ct-addon:bar
    build:
      context: .
      tags: [ct-addon:baz]
      x-bake:
        tags: [ct-addon:foo, ct-addon:alp]
        platforms: [linux/amd64, linux/arm64]
        pull: true
        contexts:
          alpine: docker-image://alpine:3.13
  aws:
    image: ct-fake-aws:bar
    build:
      dockerfile: ./aws.Dockerfile
      shm_size: 128m
      ulimits:
        nofile: {soft: 1024, hard: 1024}
      x-bake:
        ssh: default
        platforms: linux/arm64
        output: type=docker
        no-cache: true
""",
        )
    )
    addon, aws = target(d, "addon"), target(d, "aws")
    assert addon.tags == ["ct-addon:baz", "ct-addon:foo", "ct-addon:alp"]
    assert addon.platforms == ["linux/amd64", "linux/arm64"] and addon.pull is True
    assert addon.contexts == {"alpine": "docker-image://alpine:3.13"}
    assert aws.tags == ["ct-fake-aws:bar"] and aws.shm_size == "128MiB"
    assert aws.ulimits == ["nofile=1024:1024"] and aws.no_cache is True
    assert [o.string() for o in aws.output] == ["type=docker"]


def test_compose_interpolation_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TestBuildArgEnvCompose, TestDotEnv, TestProjectName."""
    (tmp_path / ".env").write_text("FROMDOT=bar\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZZZ_BAR", "zzz_foo")
    d = parse(
        (
            "compose.yml",
            "services:\n  s:\n    build:\n      args:\n        FROMDOT:\n        BAR: $ZZZ_BAR\n        DEF: ${NOPE:-fallback}\n        P: ${COMPOSE_PROJECT_NAME}\n",
        )
    )
    assert target(d, "s").args == {
        "FROMDOT": "bar",
        "BAR": "zzz_foo",
        "DEF": "fallback",
        "P": "bake",
    }


def test_compose_errors() -> None:
    """TestUnknownBuildField, TestInconsistentComposeFile, TestEmptyComposeFile."""
    with pytest.raises(BakeError, match="additional properties 'foo' not allowed"):
        parse(("compose.yml", "services:\n  w:\n    build:\n      context: .\n      foo: bar\n"))
    with pytest.raises(BakeError, match="neither an image nor a build context"):
        parse(("compose.yml", "services:\n  w:\n    entrypoint: echo 1\n"))
    with pytest.raises(BakeError, match="empty compose file"):
        parse(("compose.yml", ""))


def test_compose_then_hcl_merge() -> None:
    """TestHCLCombineCompose; last file wins for tags, maps merge."""
    d = parse(
        (
            "compose.yml",
            "services:\n  app:\n    build:\n      dockerfile: Dockerfile-alternate\n      args:\n        v2: bar\n      tags: [bar]\n",
        ),
        (
            "docker-bake.hcl",
            'target "app" {\n context = "dir"\n args = { v1 = "foo" }\n tags = ["foo"]\n}',
        ),
    )
    t = target(d, "app")
    assert (t.context, t.dockerfile, t.args, t.tags) == (
        "dir",
        "Dockerfile-alternate",
        {"v2": "bar", "v1": "foo"},
        ["foo"],
    )


def test_service_context_links() -> None:
    """TestServiceContextDot."""
    d = parse(
        (
            "compose.yml",
            "services:\n  base.1:\n    build:\n      dockerfile: b.Dockerfile\n  webapp:\n    build:\n      context: ./dir\n      additional_contexts:\n        base: service:base.1\n",
        )
    )
    assert target(d, "webapp").contexts == {"base": "target:base_1"}
