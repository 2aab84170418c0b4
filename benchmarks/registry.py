"""Push and pull of a multi-layer image: bale vs `skopeo copy`, against one docker-registry.

    BALE_BENCH_SIZE_MB=500 .venv/bin/python benchmarks/registry.py

Builds an image of incompressible layers (total BALE_BENCH_SIZE_MB, default 500) in a temporary
store, starts docker-registry on 127.0.0.1, then times in the same run:
  push: bale push_image → repo bench/bale      vs  skopeo copy oci:<layout> → repo bench/skopeo
  pull: bale pull → empty store                vs  skopeo copy docker://… → empty OCI layout
and prints seconds, MiB/s and bale/skopeo ratios (below 1.0 means bale is faster).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform
from bale.registry import pull, push_image
from bale.registry.hosts import HostsConfig
from bale.registry.transport import Registries, RegistryOptions
from bale.store.local import Store

LAYERS = 8


class _Random:
    """os.urandom as a file, for tarfile."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def build_image(store: Store, size_mb: int, work: Path) -> Descriptor:
    per_layer = max(1, size_mb * (1 << 20) // LAYERS)
    layers, diff_ids = [], []
    for i in range(LAYERS):
        path = work / f"layer{i}.tar"
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo(f"data{i}.bin")
            info.size = per_layer
            tar.addfile(info, _Random(per_layer))  # type: ignore[arg-type]
        with open(path, "rb") as f:
            digest, _ = store.ingest(f)
        layers.append(Descriptor(mediatype.OCI_LAYER, digest, path.stat().st_size))
        diff_ids.append(digest)
        path.unlink()
    config = ImageConfig(platform=Platform.parse("linux/amd64"), diff_ids=tuple(diff_ids))
    config_desc = store.put_document(config.encode(), mediatype.OCI_CONFIG)
    manifest = store.put_document(
        Manifest(config_desc, tuple(layers)).encode(),
        mediatype.OCI_MANIFEST,
        platform=Platform.parse("linux/amd64"),
    )
    index = store.put_document(Index((manifest,)).encode(), mediatype.OCI_INDEX)
    store.set_image("bench:1", index)
    return index


def write_layout(store: Store, target: Descriptor, out: Path) -> None:
    """An OCI layout of the image for skopeo, with blobs hard-linked from the store."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    todo = [target]
    while todo:
        desc = todo.pop()
        os.link(store.content.blob_path(desc.digest), blobs / desc.digest.hex)
        if mediatype.is_index(desc.media_type):
            todo.extend(store.index(desc).manifests)
        elif mediatype.is_manifest(desc.media_type):
            todo.extend(store.manifest(desc).children())
    entry = target.with_annotations(**{"org.opencontainers.image.ref.name": "bench"})
    (out / "index.json").write_text(json.dumps(Index((entry,)).to_json()))


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {work / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = open(work / "registry.log", "wb")  # noqa: SIM115 - lives as long as the registry
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://{host}/v2/", timeout=2)
            return proc, host
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"docker-registry did not start: {(work / 'registry.log').read_text()}")
            time.sleep(0.1)


def timed(label: str, fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"  {label:<14} {elapsed:8.2f} s", flush=True)
    return elapsed


def main() -> int:
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (scripts/setup-host.sh installs it)")
    size_mb = int(os.environ.get("BALE_BENCH_SIZE_MB", "500"))
    with tempfile.TemporaryDirectory(prefix="bale-bench-registry-") as tmp:
        work = Path(tmp)
        proc, host = start_registry(work)
        try:
            with (
                Store(work / "store") as store,
                Store(work / "pulled") as pulled,
                Registries(RegistryOptions(hosts=HostsConfig())) as registries,
            ):
                print(f"building a {size_mb} MiB image of {LAYERS} layers ...", flush=True)
                target = build_image(store, size_mb, work)
                write_layout(store, target, work / "layout")
                mib = sum(b.size for b in store.content.walk()) / (1 << 20)
                print(f"registry {host}, {mib:.0f} MiB of blobs")
                bale_push = timed(
                    "bale push",
                    lambda: push_image(
                        store, target, f"{host}/bench/bale:1", registries=registries
                    ),
                )
                skopeo_push = timed(
                    "skopeo push",
                    lambda: subprocess.run(
                        [
                            "skopeo",
                            "copy",
                            "-q",
                            "--dest-tls-verify=false",
                            f"oci:{work / 'layout'}:bench",
                            f"docker://{host}/bench/skopeo:1",
                        ],
                        check=True,
                    ),
                )
                bale_pull = timed(
                    "bale pull",
                    lambda: pull(
                        pulled,
                        f"{host}/bench/bale:1",
                        registries=registries,
                        platforms=[Platform.parse("linux/amd64")],
                    ),
                )
                skopeo_pull = timed(
                    "skopeo pull",
                    lambda: subprocess.run(
                        [
                            "skopeo",
                            "copy",
                            "-q",
                            "--src-tls-verify=false",
                            f"docker://{host}/bench/skopeo:1",
                            f"oci:{work / 'skopeo-out'}:bench",
                        ],
                        check=True,
                    ),
                )
                assert pulled.images().get(f"{host}/bench/bale:1").target.digest == Digest.parse(
                    str(target.digest)
                )
        finally:
            proc.terminate()
            proc.wait()
    print(
        f"push: bale {mib / bale_push:7.1f} MiB/s, skopeo {mib / skopeo_push:7.1f} MiB/s, "
        f"ratio bale/skopeo {bale_push / skopeo_push:.2f}x"
    )
    print(
        f"pull: bale {mib / bale_pull:7.1f} MiB/s, skopeo {mib / skopeo_pull:7.1f} MiB/s, "
        f"ratio bale/skopeo {bale_pull / skopeo_pull:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
