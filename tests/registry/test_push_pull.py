"""Push and pull against a real docker-registry (no auth)."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest
from reghelp import RegistryServer, blob_digests, make_image

from bale.cli.main import main
from bale.errors import NotFound
from bale.oci import mediatype
from bale.oci.manifest import Index
from bale.oci.platform import Platform
from bale.oci.reference import Reference
from bale.registry import ensure_image, fetch_layers, pull, push_image
from bale.registry.transfer import SOURCE_LABEL, ProgressEvent
from bale.registry.transport import Registries
from bale.store.check import check_store
from bale.store.layers.chain import chain_ids
from bale.store.local import Store
from bale.store.snapshots import Snapshotter


def skopeo_raw(ref: str) -> bytes:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed (scripts/setup-host.sh installs it)")
    return subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=True,
    ).stdout


def test_push_two_platforms_then_pull_into_empty_store(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "docker.io/library/app:1")
    ref = Reference.parse(f"{plain_registry.host}/team/app:1")
    result = push_image(store, target, ref, registries=registries)
    assert result.descriptor.digest == target.digest
    assert result.uploaded > 0

    # What the registry serves for the tag is exactly the bytes bale holds.
    assert skopeo_raw(str(ref)) == store.content.read_bytes(target.digest)

    pulled = pull(other_store, ref, registries=registries, all_platforms=True)
    assert pulled.target.digest == target.digest
    assert other_store.images().get(str(ref)).target.digest == target.digest
    assert blob_digests(other_store) == blob_digests(store)
    assert check_store(other_store) == []
    # Every pulled blob says where it came from, so a later push can mount it.
    for digest in blob_digests(other_store):
        labels = other_store.meta.labels(str(digest))
        assert labels[SOURCE_LABEL + plain_registry.host] == "team/app"


def test_pull_one_platform_keeps_index_and_only_that_content(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "one:1", seed="one-platform")
    ref = f"{plain_registry.host}/team/one:1"
    push_image(store, target, ref, registries=registries)

    arm64 = [Platform.parse("linux/arm64")]
    result = pull(other_store, ref, registries=registries, platforms=arm64)
    assert result.target.digest == target.digest
    index = other_store.index(result.target)
    arm = next(m for m in index.image_manifests() if m.platform == Platform.parse("linux/arm64"))
    amd = next(m for m in index.image_manifests() if m.platform == Platform.parse("linux/amd64"))
    assert other_store.content.exists(arm.digest)
    assert not other_store.content.exists(amd.digest)
    assert other_store.select_platform(result.target, Platform.parse("linux/arm64")) == arm
    # The arm64 attestation came along; the amd64 one did not.
    atts = {a.annotation("vnd.docker.reference.digest"): a for a in index.attestations()}
    assert other_store.content.exists(atts[str(arm.digest)].digest)
    assert not other_store.content.exists(atts[str(amd.digest)].digest)
    assert check_store(other_store) == []

    with pytest.raises(NotFound, match=r"no matching manifest for linux/s390x.*linux/amd64"):
        pull(other_store, ref, registries=registries, platforms=[Platform.parse("linux/s390x")])


def test_cross_repository_mount(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "mnt:1", seed="mount-me")
    first = f"{plain_registry.host}/mount/src:1"
    push_image(store, target, first, registries=registries)
    pull(other_store, first, registries=registries, all_platforms=True)

    # The pulled store knows the blobs live in mount/src, so pushing elsewhere mounts them.
    second = f"{plain_registry.host}/mount/dst:1"
    result = push_image(other_store, target, second, registries=registries)
    assert (
        result.mounted
        == len(blob_digests(store))
        - len(Index.parse(store.content.read_bytes(target.digest)).manifests)
        - 1
    )
    assert result.uploaded == 0
    log = plain_registry.log_text()
    mounts = re.findall(
        r'"POST /v2/mount/dst/blobs/uploads/\?mount=sha256%3A[0-9a-f]{64}'
        r'&from=mount%2Fsrc HTTP/1.1" 201',
        log,
    )
    assert len(mounts) == result.mounted
    assert skopeo_raw(second) == store.content.read_bytes(target.digest)


def test_ensure_image_is_lazy_and_verifies_digest(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "base:1", seed="base-image")
    ref = f"{plain_registry.host}/lib/base:1"
    push_image(store, target, ref, registries=registries)

    with other_store.lease() as lease:
        base = ensure_image(
            other_store, ref, Platform.parse("linux/arm64"), registries=registries, lease=lease
        )
        assert base.resolved.digest == target.digest
        assert base.config.platform == Platform.parse("linux/arm64")
        assert not base.local and base.exact_platform
        manifest = other_store.manifest(base.manifest)
        # Documents only: no layer was downloaded yet.
        assert not any(other_store.content.exists(layer.digest) for layer in manifest.layers)
        created = fetch_layers(other_store, ref, base.manifest, registries=registries, lease=lease)
        assert set(created) == {layer.digest for layer in manifest.layers}

        by_digest = ensure_image(
            other_store,
            f"{plain_registry.host}/lib/base@{target.digest}",
            Platform.parse("linux/amd64"),
            registries=registries,
            lease=lease,
        )
        assert by_digest.resolved.digest == target.digest
        assert by_digest.config.platform == Platform.parse("linux/amd64")

        with pytest.raises(NotFound, match="no match for platform linux/s390x"):
            ensure_image(
                other_store, ref, Platform.parse("linux/s390x"), registries=registries, lease=lease
            )

    # Once pulled and named, the store answers without asking the registry.
    pull(other_store, ref, registries=registries, all_platforms=True)
    local = ensure_image(other_store, ref, Platform.parse("linux/amd64"))
    assert local.local and local.resolved.digest == target.digest


def test_cli_push_pull_and_imagetools_inspect(
    plain_registry: RegistryServer,
    store: Store,
    tmp_path: object,
    docker_config: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = make_image(store, f"{plain_registry.host}/cli/app:2", seed="cli")
    root = str(store.root)
    assert main(["--root", root, "push", f"{plain_registry.host}/cli/app:2"]) == 0
    out = capsys.readouterr().out
    assert f"2: digest: {target.digest} size: {target.size}" in out

    root2 = str(store.root.parent / "cli-store")
    name = f"{plain_registry.host}/cli/app:2"
    assert main(["--root", root2, "pull", "--all-platforms", name]) == 0
    out = capsys.readouterr().out
    assert f"Digest: {target.digest}" in out
    with Store(store.root.parent / "cli-store") as pulled:
        assert pulled.images().get(name).target.digest == target.digest
        # Unpacked as it arrived: each platform's top snapshot is there, named by chain id.
        tops = set()
        for _, desc in pulled.platform_manifests(target):
            diff_ids = pulled.config(pulled.manifest(desc).config).diff_ids
            tops.add(str(chain_ids(list(diff_ids))[-1]))
        snapshots = Snapshotter(pulled.root / "snapshots")
        try:
            assert all(snapshots.lookup(top) is not None for top in tops) and len(tops) == 2
        finally:
            snapshots.close()

    assert main(["imagetools", "inspect", "--raw", f"{plain_registry.host}/cli/app:2"]) == 0
    raw = capsys.readouterr().out
    assert raw.encode() == store.content.read_bytes(target.digest)
    assert main(["imagetools", "inspect", f"{plain_registry.host}/cli/app:2"]) == 0
    text = capsys.readouterr().out
    assert f"Digest:    {target.digest}" in text
    assert "  Platform:  linux/arm64" in text
    assert f"  Name:      {plain_registry.host}/cli/app:2@sha256:" in text

    # Unknown tag: one clear line, exit 1.
    assert main(["--root", root2, "pull", f"{plain_registry.host}/cli/app:nope"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].startswith("ERROR: fetch manifest") and "404" in err[-2]
    assert "MANIFEST_UNKNOWN" in err[-2]


def test_push_of_partially_pulled_image_is_refused(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "part:1", seed="partial")
    ref = f"{plain_registry.host}/part/app:1"
    push_image(store, target, ref, registries=registries)
    pull(other_store, ref, registries=registries, platforms=[Platform.parse("linux/amd64")])
    with pytest.raises(NotFound, match=r"linux/arm64.*is not in the store"):
        push_image(other_store, target, f"{plain_registry.host}/part/copy:1", registries=registries)


def test_push_by_digest_moves_no_tag(
    plain_registry: RegistryServer, registries: Registries, store: Store
) -> None:
    target = make_image(store, "bd:1", seed="by-digest", platforms=("linux/amd64",))
    ref = Reference.parse(f"{plain_registry.host}/bd/app:1")
    push_image(store, target, ref, registries=registries, by_digest=True)
    raw = skopeo_raw(f"{ref.name}@{target.digest}")
    assert raw == store.content.read_bytes(target.digest)
    tags = httpx.get(f"http://{plain_registry.host}/v2/bd/app/tags/list").json()
    assert not tags.get("tags")
    assert mediatype.is_index(target.media_type)


def test_pull_reports_byte_progress_and_existing_layers(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "prog:1", ("linux/amd64",), layer_size=3 << 20, seed="progress")
    ref = f"{plain_registry.host}/prog/app:1"
    push_image(store, target, ref, registries=registries)
    events: list[ProgressEvent] = []
    pull(other_store, ref, registries=registries, progress=events.append)
    layers = other_store.manifest(
        other_store.select_platform(target, Platform.parse("linux/amd64"))
    )
    for layer in layers.layers:
        mine = [e for e in events if e.digest == layer.digest]
        assert mine[0].action == "started" and mine[-1].action == "done"
        # Byte events count up to the layer's size.
        counts = [e.done for e in mine if e.action == "bytes"]
        assert counts == sorted(counts) and counts[-1] == layer.size
    events.clear()
    pull(other_store, ref, registries=registries, progress=events.append)
    assert {e.action for e in events} == {"exists"}


def test_single_platform_base_used_for_another_platform(
    plain_registry: RegistryServer, registries: Registries, store: Store, other_store: Store
) -> None:
    target = make_image(store, "solo:1", ("linux/amd64",), seed="solo", single=True)
    ref = f"{plain_registry.host}/solo/app:1"
    push_image(store, target, ref, registries=registries)
    with other_store.lease() as lease:
        base = ensure_image(
            other_store, ref, Platform.parse("linux/arm64"), registries=registries, lease=lease
        )
    # As BuildKit: the only manifest is used, and the caller is told it does not match.
    assert base.manifest.digest == target.digest
    assert base.config.platform == Platform.parse("linux/amd64")
    assert not base.exact_platform
