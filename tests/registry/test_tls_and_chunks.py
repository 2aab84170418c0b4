"""A TLS registry with a self-signed certificate, and chunked uploads."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from reghelp import FAST_RETRY, RegistryServer, blob_digests, make_image, start_registry

from bale.errors import RegistryError
from bale.registry import pull, push_image
from bale.registry.hosts import HostsConfig
from bale.registry.transport import Registries, RegistryOptions
from bale.store.check import check_store
from bale.store.local import Store


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: needed for a self-signed certificate")
    directory = tmp_path_factory.mktemp("registry-tls")
    key, cert = directory / "tls.key", directory / "tls.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        capture_output=True,
        check=True,
    )
    server = start_registry(directory, f"  tls:\n    certificate: {cert}\n    key: {key}\n")
    yield server
    server.stop()


def test_self_signed_tls_registry_on_loopback(
    tls_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "tls:1", seed="tls")
    ref = f"{tls_registry.host}/tls/app:1"
    push_image(store, target, ref, registries=registries)
    assert registries.session(tls_registry.host).base_url == f"https://{tls_registry.host}"
    assert pull(other_store, ref, registries=registries, all_platforms=True).target == target


def test_plain_http_only_setting_refuses_tls(
    tls_registry: RegistryServer, tmp_path: Path, store: Store, docker_config: Path
) -> None:
    config = tmp_path / "r.toml"
    config.write_text(f'[registry."{tls_registry.host}"]\nhttp = true\n')
    options = RegistryOptions(hosts=HostsConfig.load(config), retry=FAST_RETRY)
    with Registries(options) as regs, pytest.raises(RegistryError, match="400"):
        pull(store, f"{tls_registry.host}/tls/app:1", registries=regs)
    assert blob_digests(store) == set()


def test_chunked_upload(
    plain_registry: RegistryServer, docker_config: Path, store: Store, other_store: Store
) -> None:
    target = make_image(store, "chunky:1", ("linux/amd64",), layer_size=300_000, seed="chunky")
    options = RegistryOptions(hosts=HostsConfig(), retry=FAST_RETRY, chunk_size=100_000)
    with Registries(options) as regs:
        push_image(store, target, f"{plain_registry.host}/chunky/app:1", registries=regs)
        pull(
            other_store, f"{plain_registry.host}/chunky/app:1", registries=regs, all_platforms=True
        )
    assert blob_digests(other_store) == blob_digests(store)
    assert check_store(other_store) == []
    patches = re.findall(
        r'"PATCH /v2/chunky/app/blobs/uploads/[^"]*" 202', plain_registry.log_text()
    )
    assert len(patches) >= 6  # two 300 kB layers in 100 kB chunks
