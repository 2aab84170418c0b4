"""Real registries for the registry tests: docker-registry (plain, htpasswd, token auth), a
Docker-token-spec token server, and helpers that build small multi-platform images in a store."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hostile import Hostile, Image, registries_for, small_image, start_hostile
from reghelp import (
    FAST_RETRY,
    ISSUER,
    PASSWORD,
    SERVICE,
    USER,
    RegistryServer,
    TokenRegistry,
    make_image,
    start_registry,
    start_token_server,
)

from bale.oci.descriptor import Descriptor
from bale.registry.hosts import HostsConfig
from bale.registry.transport import Registries, RegistryOptions
from bale.store.local import Store


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry-plain"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        pytest.skip("htpasswd is not installed (apache2-utils, scripts/setup-host.sh)")
    directory = tmp_path_factory.mktemp("registry-basic")
    line = (
        subprocess.run([htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )
    (directory / "htpasswd").write_text(line + "\n")
    auth = f"auth:\n  htpasswd:\n    realm: bale-test\n    path: {directory / 'htpasswd'}\n"
    server = start_registry(directory, auth)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: needed to sign test tokens")
    directory = tmp_path_factory.mktemp("registry-token")
    tokens = start_token_server(directory)
    auth = (
        "auth:\n  token:\n"
        f"    realm: {tokens.url}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
        f"    rootcertbundle: {tokens.cert}\n"
    )
    server = start_registry(directory, auth)
    yield TokenRegistry(server, tokens)
    server.stop()
    assert tokens.server is not None
    tokens.server.shutdown()
    tokens.server.server_close()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG directory, so tests never read or write ~/.docker."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    monkeypatch.setenv("BALE_REGISTRIES_CONFIG", str(tmp_path / "registries.toml"))
    return directory


@pytest.fixture
def registries(docker_config: Path) -> Iterator[Registries]:
    with Registries(RegistryOptions(hosts=HostsConfig(), retry=FAST_RETRY)) as regs:
        yield regs


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as s:
        yield s


@pytest.fixture
def other_store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store2") as s:
        yield s


@pytest.fixture
def image_factory() -> Callable[..., Descriptor]:
    return make_image


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """A registry that misbehaves on purpose (tests/registry/hostile.py), per test."""
    server = start_hostile()
    yield server
    server.close()


@pytest.fixture
def image(hostile: Hostile) -> Image:
    image = small_image()
    hostile.serve_image("app", image)
    return image


@pytest.fixture
def regs(hostile: Hostile, docker_config: Path) -> Iterator[Registries]:
    with registries_for(hostile) as registries:
        yield registries
