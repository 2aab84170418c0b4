"""Basic and bearer-token auth against real registries; login and logout."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from reghelp import FAST_RETRY, PASSWORD, USER, RegistryServer, TokenRegistry, make_image

from bale.cli.main import main
from bale.errors import RegistryError
from bale.registry import pull, push_image
from bale.registry.credentials import Credentials, DockerConfig
from bale.registry.hosts import HostsConfig
from bale.registry.transport import Registries, RegistryOptions
from bale.store.local import Store


def fresh() -> Registries:
    return Registries(RegistryOptions(hosts=HostsConfig(), retry=FAST_RETRY))


def login_cli(monkeypatch: pytest.MonkeyPatch, host: str, password: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["login", "-u", USER, "--password-stdin", host])


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, err
    return lines[0]


def test_basic_auth_login_push_pull_logout(
    basic_registry: RegistryServer,
    docker_config: Path,
    store: Store,
    other_store: Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = basic_registry.host
    target = make_image(store, f"{host}/basic/app:1", seed="basic")

    # Without credentials: one clear line that says how to fix it.
    assert main(["--root", str(store.root), "push", f"{host}/basic/app:1"]) == 1
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert "401 Unauthorized" in line and "authentication required" in line
    assert f"hint: log in with `bale login {host}`" in err

    # Wrong password: refused, nothing written.
    assert login_cli(monkeypatch, host, "wrong") == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == f"ERROR: login {host}: 401 unauthorized: incorrect username or password"
    assert not (docker_config / "config.json").exists()

    assert login_cli(monkeypatch, host, PASSWORD) == 0
    assert "Login Succeeded" in capsys.readouterr().out
    auths = json.loads((docker_config / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[host]["auth"]).decode() == f"{USER}:{PASSWORD}"

    assert main(["--root", str(store.root), "push", f"{host}/basic/app:1"]) == 0
    assert f"digest: {target.digest}" in capsys.readouterr().out
    with fresh() as registries:
        pulled = pull(other_store, f"{host}/basic/app:1", registries=registries, all_platforms=True)
    assert pulled.target.digest == target.digest

    assert main(["logout", host]) == 0
    assert f"Removing login credentials for {host}" in capsys.readouterr().out
    assert host not in json.loads((docker_config / "config.json").read_text())["auths"]
    with fresh() as registries, pytest.raises(RegistryError) as info:
        pull(other_store, f"{host}/basic/app:1", registries=registries)
    assert info.value.status == 401


def test_token_auth_scopes_and_reuse(
    token_registry: TokenRegistry,
    docker_config: Path,
    store: Store,
    other_store: Store,
) -> None:
    host = token_registry.registry.host
    tokens = token_registry.tokens
    DockerConfig(docker_config).store(host, Credentials(USER, PASSWORD))
    target = make_image(store, "tok:1", seed="token")
    blobs = len(list(store.content.walk()))

    before = len(tokens.requests)
    with fresh() as registries:
        push_image(store, target, f"{host}/tok/src:1", registries=registries)
    pushes = tokens.requests[before:]
    # One token for push,pull on the repository, reused for every blob and manifest.
    assert pushes == [(USER, ("repository:tok/src:pull,push",))], pushes
    assert blobs > 5

    before = len(tokens.requests)
    with fresh() as registries:
        pull(other_store, f"{host}/tok/src:1", registries=registries, all_platforms=True)
    assert tokens.requests[before:] == [(USER, ("repository:tok/src:pull",))]

    # A mount asks for pull on the source as well as push on the target, in one token.
    before = len(tokens.requests)
    with fresh() as registries:
        result = push_image(other_store, target, f"{host}/tok/dst:1", registries=registries)
    assert result.mounted > 0 and result.uploaded == 0
    scopes = {s for _, req in tokens.requests[before:] for s in req}
    assert {"repository:tok/dst:pull,push", "repository:tok/src:pull"} <= scopes
    assert "from=tok%2Fsrc" in token_registry.registry.log_text()


def test_token_auth_wrong_and_missing_credentials(
    token_registry: TokenRegistry,
    docker_config: Path,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = token_registry.registry.host
    make_image(store, f"{host}/private/app:1", seed="private")

    # Anonymous: the token service grants nothing, the registry refuses, once and clearly.
    assert main(["--root", str(store.root), "push", f"{host}/private/app:1"]) == 1
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert "401 Unauthorized" in line and "authentication required" in line
    assert "hint: log in" in err

    assert login_cli(monkeypatch, host, "nope") == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"ERROR: login {host}: 401 unauthorized: incorrect username or password for {host}"
    )

    DockerConfig(docker_config).store(host, Credentials(USER, "nope"))
    with fresh() as registries, pytest.raises(RegistryError, match="incorrect username"):
        push_image(
            store,
            store.images().get(f"{host}/private/app:1").target,
            f"{host}/private/app:1",
            registries=registries,
        )

    assert login_cli(monkeypatch, host, PASSWORD) == 0
    assert main(["--root", str(store.root), "push", f"{host}/private/app:1"]) == 0


def test_token_anonymous_pull_of_public_repository(
    token_registry: TokenRegistry,
    docker_config: Path,
    store: Store,
    other_store: Store,
) -> None:
    host = token_registry.registry.host
    target = make_image(store, "pub:1", ("linux/amd64",), seed="public")
    DockerConfig(docker_config).store(host, Credentials(USER, PASSWORD))
    with fresh() as registries:
        push_image(store, target, f"{host}/public/app:1", registries=registries)
    DockerConfig(docker_config).erase(host)

    before = len(token_registry.tokens.requests)
    with fresh() as registries:
        assert pull(other_store, f"{host}/public/app:1", registries=registries).target == target
        # The anonymous token allows pull only: pushing is refused.
        with pytest.raises(RegistryError, match="401") as info:
            push_image(other_store, target, f"{host}/public/app:2", registries=registries)
    assert "hint" not in str(info.value) and info.value.hint.startswith("log in")
    assert ("", ("repository:public/app:pull",)) in token_registry.tokens.requests[before:]
