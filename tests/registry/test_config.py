"""Docker credentials (auths, credential helpers), registry hosts config, mirrors, challenges."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest
from reghelp import FAST_RETRY, PASSWORD, USER, RegistryServer, make_image

from bale.cli.main import main
from bale.errors import InvalidArgument, RegistryError
from bale.registry import pull, push_image
from bale.registry.auth import Challenge, Scope, merge_scopes
from bale.registry.credentials import ANONYMOUS, Credentials, DockerConfig
from bale.registry.hosts import HostsConfig, is_loopback, normalize_host
from bale.registry.transport import Registries, RegistryOptions
from bale.store.local import Store

HELPER = """#!/bin/sh
# A docker-credential helper keeping secrets in a JSON file next to it.
db="$(dirname "$0")/secrets.json"
[ -f "$db" ] || echo '{}' > "$db"
input="$(cat)"
case "$1" in
  get) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2]
if k not in d: print("credentials not found in native keychain"); sys.exit(1)
print(json.dumps({"ServerURL": k, "Username": d[k][0], "Secret": d[k][1]}))' "$db" "$input" ;;
  store) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=json.loads(sys.argv[2])
d[r["ServerURL"]] = [r["Username"], r["Secret"]]
json.dump(d, open(sys.argv[1], "w"))' "$db" "$input" ;;
  erase) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop(sys.argv[2])
json.dump(d, open(sys.argv[1], "w"))' "$db" "$input" ;;
esac
"""


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-fake"
    script.write_text(HELPER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir / "secrets.json"


def test_auths_entries_are_matched_by_host(docker_config: Path) -> None:
    auth = base64.b64encode(b"bob:pw:with:colons").decode()
    hub = base64.b64encode(b"hubuser:hubpw").decode()
    (docker_config / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://registry.example.com:5000/v1/": {"auth": auth},
                    "https://index.docker.io/v1/": {"auth": hub},
                }
            }
        )
    )
    config = DockerConfig()
    assert config.path == docker_config / "config.json"
    assert config.get("registry.example.com:5000") == Credentials("bob", "pw:with:colons")
    assert config.get("docker.io") == Credentials("hubuser", "hubpw")
    assert config.get("other.example.com") == ANONYMOUS

    config.store("other.example.com", Credentials("x", "y"))
    doc = json.loads(config.path.read_text())
    assert doc["auths"]["https://index.docker.io/v1/"] == {"auth": hub}
    assert stat.S_IMODE(config.path.stat().st_mode) == 0o600
    assert config.erase("registry.example.com:5000")
    assert not config.erase("registry.example.com:5000")
    assert config.get("registry.example.com:5000") == ANONYMOUS


def test_malformed_docker_config_is_a_clear_error(docker_config: Path) -> None:
    (docker_config / "config.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match=r"malformed JSON in Docker config .*config\.json"):
        DockerConfig().get("docker.io")


def test_credential_helper_get_store_erase(
    basic_registry: RegistryServer,
    docker_config: Path,
    helper: Path,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = basic_registry.host
    (docker_config / "config.json").write_text(json.dumps({"credHelpers": {host: "fake"}}))
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD))
    assert main(["login", "-u", USER, "--password-stdin", host]) == 0
    # The secret went to the helper, not into config.json.
    assert json.loads(helper.read_text()) == {host: [USER, PASSWORD]}
    assert "auths" not in json.loads((docker_config / "config.json").read_text())

    target = make_image(store, "helper:1", ("linux/amd64",), seed="helper")
    with Registries(RegistryOptions(hosts=HostsConfig(), retry=FAST_RETRY)) as registries:
        result = push_image(store, target, f"{host}/helper/app:1", registries=registries)
    assert result.descriptor.digest == target.digest

    assert main(["logout", host]) == 0
    assert json.loads(helper.read_text()) == {}
    capsys.readouterr()


def test_mirror_serves_pulls(
    plain_registry: RegistryServer,
    tmp_path: Path,
    registries: Registries,
    store: Store,
    other_store: Store,
) -> None:
    target = make_image(store, "mirrored:1", ("linux/amd64",), seed="mirror")
    push_image(store, target, f"{plain_registry.host}/mirrored/app:1", registries=registries)
    config = tmp_path / "registries.toml"
    config.write_text(f'[registry."registry.invalid"]\nmirrors = ["{plain_registry.host}"]\n')
    hosts = HostsConfig.load(config)
    assert hosts.mirrors("registry.invalid") == (plain_registry.host,)
    with Registries(RegistryOptions(hosts=hosts, retry=FAST_RETRY)) as regs:
        result = pull(other_store, "registry.invalid/mirrored/app:1", registries=regs)
    assert result.target.digest == target.digest
    assert other_store.images().get("registry.invalid/mirrored/app:1")


def test_hosts_config_parsing(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[registry."docker.io"]\nmirrors = ["https://mirror.gcr.io"]\n'
        '[registry."internal:5000"]\nhttp = true\n'
    )
    hosts = HostsConfig.load(path)
    assert hosts.mirrors("docker.io") == ("mirror.gcr.io",)
    assert hosts.plain_http("internal:5000") and not hosts.insecure("internal:5000")
    assert hosts.with_insecure(True).insecure("internal:5000")
    assert HostsConfig.load(tmp_path / "absent.toml") == HostsConfig()
    path.write_text('[registry."x"]\nmirrors = "nope"\n')
    with pytest.raises(InvalidArgument, match="mirrors must be a list"):
        HostsConfig.load(path)
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5")
    assert not is_loopback("registry.example.com:5000")
    assert normalize_host("https://index.docker.io/v1/") == "docker.io"


def test_challenge_and_scopes() -> None:
    c = Challenge.parse(
        'Bearer realm="https://auth.example/token",service="reg",'
        'scope="repository:a/b:pull,push repository:c:pull",'
        'error="insufficient_scope"'
    )
    assert c is not None and c.scheme == "bearer"
    assert c.param("realm") == "https://auth.example/token"
    assert Scope.parse_many(c.param("scope")) == (Scope("a/b", ("pull", "push")), Scope("c"))
    assert Challenge.parse('Basic realm="x"') == Challenge("basic", (("realm", "x"),))
    merged = merge_scopes((Scope.pull("a"), Scope.push("a"), Scope.pull("b")))
    assert [str(s) for s in merged] == ["repository:a:pull,push", "repository:b:pull"]


def test_a_nesting_bomb_in_the_docker_config_is_a_clear_error(docker_config: Path) -> None:
    (docker_config / "config.json").write_text('{"auths":' + "[" * 100_000)
    with pytest.raises(InvalidArgument, match=r"Docker config .*: nested deeper than 64 levels"):
        DockerConfig().get("docker.io")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("[" * 100_000, r"malformed JSON in the answer: nested deeper than 64 levels"),
        ("not json", r"malformed JSON in the answer: Expecting value"),
        ("[]", r"the answer is not a JSON object"),
        ("[" + "1," * (1 << 20) + "1]", r"the answer is \d+ bytes, more than the limit of 1 MiB"),
    ],
)
def test_a_credential_helper_answering_garbage_is_a_clear_error(
    docker_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    output: str,
    message: str,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "out").write_text(output)
    script = bin_dir / "docker-credential-bomb"
    script.write_text(f"#!/bin/sh\ncat >/dev/null\ncat {tmp_path / 'out'}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "bomb"}))
    with pytest.raises(
        RegistryError, match=r"^credential helper docker-credential-bomb get: " + message
    ):
        DockerConfig().get("registry.example.com")
