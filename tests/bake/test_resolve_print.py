"""Target resolution, --set and --print, from buildx's bake_test.go and tests/bake.go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bakehelp import hcl, plan, printed

from bale.errors import BakeError

WEB = """
target "webDEP" {
  args = {
    VAR_INHERITED = "webDEP"
    VAR_BOTH = "webDEP"
  }
  no-cache = true
  shm-size = "128m"
  ulimits = ["nofile=1024:1024"]
  extra-hosts = { my_hostname = "8.8.8.8" }
}
target "webapp" {
  dockerfile = "Dockerfile.webapp"
  args = { VAR_BOTH = "webapp" }
  annotations = ["index,manifest:org.opencontainers.image.authors=dvdksn"]
  attest = ["type=provenance,mode=max"]
  platforms = ["linux/amd64"]
  secret = ["id=FOO,env=FOO"]
  inherits = ["webDEP"]
}"""


def test_read_targets_no_overrides() -> None:
    """TestReadTargets/NoOverrides."""
    p = plan(hcl(WEB), ["webapp"])
    t = p.targets["webapp"]
    assert (t.dockerfile, t.context, t.no_cache, t.shm_size) == (
        "Dockerfile.webapp",
        ".",
        True,
        "128m",
    )
    assert t.args == {"VAR_INHERITED": "webDEP", "VAR_BOTH": "webapp"}
    assert t.ulimits == ("nofile=1024:1024",) and t.extra_hosts == {"my_hostname": "8.8.8.8"}
    assert t.pull is None
    assert p.groups["default"].targets == ("webapp",)


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestReadTargets/ArgsOverrides, PlatformAppend*, SecretSourceOverride*, PatternOverride."""
    d = hcl(WEB)
    monkeypatch.setenv("VAR_FROMENV", "fromEnv")
    t = plan(
        d,
        ["webapp"],
        [
            "webapp.args.VAR_UNSET",
            "webapp.args.VAR_EMPTY=",
            "webapp.args.VAR_SET=bananas",
            "webapp.args.VAR_INHERITED=override",
        ],
    ).targets["webapp"]
    assert t.args == {
        "VAR_INHERITED": "override",
        "VAR_BOTH": "webapp",
        "VAR_EMPTY": "",
        "VAR_SET": "bananas",
    }
    t = plan(
        d, ["webapp"], ["webDEP.args.VAR_INHERITED=override", "webDEP.args.VAR_BOTH=override"]
    ).targets["webapp"]
    assert t.args == {"VAR_INHERITED": "override", "VAR_BOTH": "webapp"}
    assert plan(
        d, ["webapp"], ["webapp.platform+=linux/arm64", "webapp.platform+=linux/riscv64"]
    ).targets["webapp"].platforms == ("linux/amd64", "linux/arm64", "linux/riscv64")
    assert plan(
        d, ["webapp"], ["webapp.platform+=linux/arm64", "webapp.platform=linux/riscv64"]
    ).targets["webapp"].platforms == ("linux/arm64", "linux/riscv64")
    assert plan(d, ["webapp"], ["webapp.secret.FOO=env=BAR"]).targets["webapp"].secrets == (
        {"id": "FOO", "env": "BAR"},
    )
    with pytest.raises(
        BakeError, match='secret "BAR" must be declared before it can be overridden'
    ):
        plan(d, ["webapp"], ["webapp.secret.BAR=env=BAR"])
    two = plan(d, ["webapp", "webDEP"], ["web*.dockerfile=foo"])
    assert {n: t.dockerfile for n, t in two.targets.items()} == {"webapp": "foo", "webDEP": "foo"}
    with pytest.raises(BakeError, match="could not find any target matching 'nomatch\\*'"):
        plan(d, ["webapp"], ["nomatch*.dockerfile=foo"])
    with pytest.raises(BakeError, match="unknown key: nosuchkey"):
        plan(d, ["webapp"], ["webapp.nosuchkey=1"])


def test_push_and_load_overrides() -> None:
    """TestPushOverride, TestLoadOverride, TestLoadAndPushOverride."""
    d = hcl(
        'target "foo" {\n output = ["type=local,dest=out"]\n}\ntarget "bar" {}\ntarget "img" {\n output = ["type=image,compression=zstd"]\n}'
    )
    p = plan(d, ["foo", "bar", "img"], ["*.load=true", "*.push=true"])
    assert p.targets["foo"].outputs == ({"dest": "out", "type": "local"},)
    assert sorted(json.dumps(o) for o in p.targets["bar"].outputs) == [
        '{"push": "true", "type": "image"}',
        '{"type": "docker"}',
    ]
    assert p.targets["img"].outputs[0] == {"compression": "zstd", "push": "true", "type": "image"}


def test_groups_and_default() -> None:
    """TestReadTargetsGroupAndTarget, TestNestedGroupsWithSameTarget, TestGroupTargetsWithDefault."""
    d = hcl(
        'group "foo" { targets = ["image"] }\ntarget "foo" { dockerfile = "bar" }\ntarget "image" { dockerfile = "test" }'
    )
    p = plan(d, ["foo"])
    assert set(p.targets) == {"image"}
    assert p.groups["default"].targets == ("foo",) and p.groups["foo"].targets == ("image",)
    d = hcl(
        'group "a" { targets = ["b", "c"] }\ngroup "b" { targets = ["d"] }\ngroup "c" { targets = ["b"] }\ntarget "d" {}\ngroup "e" { targets = ["a", "f"] }\ntarget "f" {}'
    )
    p = plan(d, ["e"])
    assert sorted(p.groups) == ["a", "b", "c", "default", "e"] and sorted(p.targets) == ["d", "f"]
    d = hcl(
        'group "default" { targets = ["app", "multiarch"] }\ntarget "app" {}\ntarget "foo" {}\ntarget "multiarch" {}'
    )
    assert plan(d, ["default", "foo"]).groups["default"].targets == ("app", "foo", "multiarch")
    with pytest.raises(BakeError, match="failed to find target default"):
        plan(hcl('target "image" {}'), ["default"])


def test_nested_inherits_with_overrides() -> None:
    """TestNestedInherits."""
    d = hcl(
        'target "a" { args = { foo = "123", bar = "234" } }\ntarget "b" {\n inherits = ["a"]\n args = { bar = "567" }\n}\ntarget "c" {\n inherits = ["a"]\n args = { baz = "890" }\n}\ntarget "d" { inherits = ["b", "c"] }'
    )
    assert plan(d, ["d"]).targets["d"].args == {"bar": "234", "baz": "890", "foo": "123"}
    assert plan(d, ["d"], ["a.args.foo=321", "c.args.bar=432"]).targets["d"].args == {
        "bar": "432",
        "baz": "890",
        "foo": "321",
    }


def test_target_contexts_links() -> None:
    """TestReadContextFromTargetChain, ...Unknown, ...InvalidPlatforms."""
    d = hcl(
        'target "base" {}\ntarget "mid" {\n output = ["foo"]\n contexts = { parent = "target:base" }\n}\ntarget "app" { contexts = { foo = "baz", bar = "target:mid" } }\ntarget "unused" {}'
    )
    p = plan(d, ["app"])
    assert sorted(p.targets) == ["app", "base", "mid"]
    assert p.targets["mid"].outputs == ({"type": "cacheonly"},) and p.targets["mid"].linked
    assert p.targets["app"].linked_targets() == {"bar": "mid"}
    with pytest.raises(BakeError, match="failed to find target bar"):
        plan(hcl('target "app" { contexts = { bar = "target:bar" } }'), ["app"])
    with pytest.raises(BakeError, match="are not a subset of"):
        plan(
            hcl(
                'target "mid" { platforms = ["linux/amd64", "linux/riscv64"] }\ntarget "app" {\n contexts = { bar = "target:mid" }\n platforms = ["linux/amd64", "linux/arm64"]\n}'
            ),
            ["app"],
        )


def test_print_matches_buildx() -> None:
    """tests/bake.go testBakePrint, testBakePrintKeepEscaped; docs: matrix --print example."""
    d = hcl('target "build" { args = { HELLO = "foo" } }')
    assert printed(d, ["build"]) == {
        "group": {"default": {"targets": ["build"]}},
        "target": {"build": {"context": ".", "dockerfile": "Dockerfile", "args": {"HELLO": "foo"}}},
    }
    d = hcl(
        'target "default" {\n dockerfile-inline = <<EOT\nARG VERSION=latest\nFROM alpine:$${VERSION}\nEOT\n args = { VERSION = "3.21" }\n annotations = ["org.opencontainers.image.authors=$${user}"]\n labels = { foo = "hello %%{bar}" }\n}'
    )
    text = plan(d).print_json()
    assert list(json.loads(text)["target"]["default"]) == [
        "annotations",
        "context",
        "dockerfile",
        "dockerfile-inline",
        "args",
        "labels",
    ]
    assert (
        json.loads(text)["target"]["default"]["dockerfile-inline"]
        == "ARG VERSION=latest\nFROM alpine:$${VERSION}\n"
    )
    assert json.loads(text)["target"]["default"]["labels"] == {"foo": "hello %%{bar}"}
    d = hcl(
        'target "app" {\n name = "app-${tgt}"\n matrix = { tgt = ["foo", "bar"] }\n target = tgt\n}'
    )
    assert printed(d, ["app"]) == {
        "group": {"app": {"targets": ["app-foo", "app-bar"]}, "default": {"targets": ["app"]}},
        "target": {
            "app-bar": {"context": ".", "dockerfile": "Dockerfile", "target": "bar"},
            "app-foo": {"context": ".", "dockerfile": "Dockerfile", "target": "foo"},
        },
    }
    d = hcl('target "default" {\n cache-to = ["type=gha,mode=min,scope=integration-tests"]\n}')
    assert printed(d, [], ["*.cache-to="]) == {
        "group": {"default": {"targets": ["default"]}},
        "target": {"default": {"context": ".", "dockerfile": "Dockerfile"}},
    }


def test_print_object_attributes_and_go_escaping() -> None:
    """tests/bake.go testBakePrintSensitive: cache entries print as objects; Go escapes <>&."""
    d = hcl(
        'target "build" {\n cache-from = ["type=gha,token=abc", "type=s3,region=us-west-2,bucket=my_bucket,name=my_image"]\n args = { X = "<a&b>" }\n}'
    )
    text = plan(d, ["build"]).print_json()
    assert json.loads(text)["target"]["build"]["cache-from"] == [
        {"token": "abc", "type": "gha"},
        {"bucket": "my_bucket", "name": "my_image", "region": "us-west-2", "type": "s3"},
    ]
    assert '"X": "\\u003ca\\u0026b\\u003e"' in text


def test_errors_are_located() -> None:
    """Syntax, unknown attribute, type, undefined variable and cycles: file:line,col."""
    cases = {
        'target "a" {\n  x = [1,\n}': "docker-bake.hcl:3,1",
        'target "a" {\n  foo = 1\n}': 'docker-bake.hcl:2,3-6: Unsupported argument; An argument named "foo"',
        'target "a" {\n  tags = "x"\n}': "docker-bake.hcl:2,10-13: Unsuitable value type; Unsuitable value: list of string required",
        'target "a" {\n  args = { X = "${NOPE}" }\n}': 'docker-bake.hcl:2,19-23: Unknown variable; There is no variable named "NOPE".',
        'target "a" {\n  args = { X = nosuch(1) }\n}': 'Call to unknown function; There is no function named "nosuch".',
    }
    for text, message in cases.items():
        with pytest.raises(BakeError) as info:
            plan(hcl(text), ["a"])
        assert message in str(info.value)
        assert info.value.source is not None and info.value.lines
    with pytest.raises(
        BakeError, match=r"docker-bake.hcl:2,\d+-\d+: inherits cycle not allowed: a -> b -> a"
    ):
        plan(hcl('target "a" {\n  inherits = ["b"]\n}\ntarget "b" {\n  inherits = ["a"]\n}'), ["a"])
    with pytest.raises(
        BakeError,
        match=r"docker-bake.hcl:2,\d+-\d+: infinite loop from a to b|infinite loop from b to a",
    ):
        plan(
            hcl(
                'target "a" {\n  contexts = { x = "target:b" }\n}\ntarget "b" {\n  contexts = { y = "target:a" }\n}'
            ),
            ["a", "b"],
        )


def test_deep_nesting_is_refused_not_a_crash() -> None:
    """Untrusted input: deeply nested brackets give an error, never a RecursionError."""
    with pytest.raises(BakeError, match=r"nested too deeply|Invalid"):
        hcl("x = " + "[" * 5000 + "]" * 5000 + '\ntarget "t" {}')


def run_cli(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH",)}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bale", "bake", *args],
        cwd=tmp,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def test_cli_print_list_and_errors(tmp_path: Path) -> None:
    """End to end through `python -m bale bake`: default file lookup, --print, --list, exit 1."""
    (tmp_path / "docker-bake.hcl").write_text(
        'variable "TAG" {\n  default = "latest"\n  description = "image tag"\n}\ngroup "default" { targets = ["app"] }\ntarget "app" {\n  description = "the app"\n  tags = ["app:${TAG}"]\n}\n'
    )
    (tmp_path / "docker-bake.override.hcl").write_text(
        'target "app" { platforms = ["linux/arm64"] }\n'
    )
    out = run_cli(tmp_path, "--print", env={"TAG": "v1"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "group": {"default": {"targets": ["app"]}},
        "target": {
            "app": {
                "description": "the app",
                "context": ".",
                "dockerfile": "Dockerfile",
                "tags": ["app:v1"],
                "platforms": ["linux/arm64"],
            }
        },
    }
    listed = run_cli(tmp_path, "--list", "targets")
    assert listed.stdout.splitlines() == ["TARGET\tDESCRIPTION", "app\tthe app", "default\tapp"]
    variables = run_cli(tmp_path, "--list", "type=variables,format=json")
    assert json.loads(variables.stdout) == [
        {"name": "TAG", "description": "image tag", "value": "latest"}
    ]
    (tmp_path / "bad.hcl").write_text('target "a" {\n  foo = 1\n}\n')
    bad = run_cli(tmp_path, "-f", "bad.hcl", "--print", "a")
    assert bad.returncode == 1
    assert "bad.hcl:2,3-6: Unsupported argument" in bad.stderr and "Traceback" not in bad.stderr
    build = run_cli(tmp_path)
    assert build.returncode == 1, build.stderr
    assert "target app: failed to read dockerfile: open Dockerfile" in build.stderr
