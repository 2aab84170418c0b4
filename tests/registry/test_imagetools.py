"""imagetools create / inspect against a real registry, read back by skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from reghelp import RegistryServer, make_image

from bale.cli.main import main
from bale.oci import mediatype
from bale.oci.manifest import Index
from bale.oci.platform import Platform
from bale.registry import pull, push_image
from bale.registry.transport import Registries
from bale.store.check import check_store
from bale.store.local import Store


def skopeo(*args: str) -> bytes:
    path = shutil.which("skopeo")
    if path is None:
        pytest.skip("skopeo is not installed (scripts/setup-host.sh installs it)")
    return subprocess.run([path, *args], capture_output=True, check=True).stdout


def test_create_merges_single_platform_pushes(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store,
    docker_config: object, capsys: pytest.CaptureFixture[str],
) -> None:
    host = plain_registry.host
    amd = make_image(store, "it-amd:1", ("linux/amd64",), seed="it-amd", single=True,
                     attestations=False)
    arm = make_image(store, "it-arm:1", ("linux/arm64",), seed="it-arm", single=True,
                     attestations=False)
    assert mediatype.is_manifest(amd.media_type)
    # Per-platform pushes: one by tag in another repository, one by digest only.
    push_image(store, amd, f"{host}/it/amd:1", registries=registries)
    push_image(store, arm, f"{host}/it/multi:1", registries=registries, by_digest=True)

    sources = [f"{host}/it/amd:1", f"{host}/it/multi@{arm.digest}"]
    assert main(["imagetools", "create", "-t", f"{host}/it/multi:both", *sources]) == 0
    printed = capsys.readouterr().out.strip()

    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host}/it/multi:both")
    assert printed == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    index = Index.parse(raw)
    assert index.media_type == mediatype.OCI_INDEX
    assert {(m.digest, m.platform) for m in index.manifests} == {
        (amd.digest, Platform.parse("linux/amd64")),
        (arm.digest, Platform.parse("linux/arm64")),
    }
    # skopeo follows the index to each platform's config (the amd64 one was copied over).
    for arch in ("amd64", "arm64"):
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--override-arch", arch,
                                 f"docker://{host}/it/multi:both"))
        assert info["Architecture"] == arch
    assert "from=it%2Famd" in plain_registry.log_text()

    pulled = pull(other_store, f"{host}/it/multi:both", registries=registries,
                  all_platforms=True)
    assert pulled.target.size == len(raw)
    assert check_store(other_store) == []

    # --dry-run prints the index without pushing it.
    assert main(["imagetools", "create", "--dry-run", *sources]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(raw)
