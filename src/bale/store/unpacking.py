"""Images unpacked as they arrive (`bale import`, `bale load`, `bale pull`), as containerd
unpacks at pull: each platform's layer chain becomes committed snapshots named by chain id,
which is what a build looks for first, so its first RUN on that base applies nothing.

Platforms unpack in parallel (one worker each, up to `workers`). `--unpack=false` or
BALE_UNPACK=0 leaves it to the first build that needs the filesystem.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bale.errors import BaleError
from bale.oci.descriptor import Descriptor
from bale.oci.platform import Platform
from bale.store.local import Store

if TYPE_CHECKING:
    from bale.store.layers.unpack import Blob, LayerSource

UNPACK_ENV = "BALE_UNPACK"
_NO = ("0", "false", "no", "off")


def unpack_wanted(flag: bool | None) -> bool:
    """The command's `--unpack` when given, else BALE_UNPACK (default: on)."""
    if flag is not None:
        return flag
    return os.environ.get(UNPACK_ENV, "1").strip().lower() not in _NO


@dataclass(frozen=True)
class Unpacked:
    platform: Platform
    snapshot: str  # the chain id naming the top snapshot ("" for an image with no layers)


def _chains(store: Store, target: Descriptor) -> list[tuple[Platform, list[LayerSource]]]:
    from bale.store.layers.unpack import LayerSource

    out: list[tuple[Platform, list[LayerSource]]] = []
    seen: set[str] = set()
    for platform, desc in store.platform_manifests(target):
        if str(desc.digest) in seen or not store.content.exists(desc.digest):
            continue  # a platform that was not fetched
        seen.add(str(desc.digest))
        manifest = store.manifest(desc)
        config = store.config(manifest.config)
        if len(manifest.layers) != len(config.diff_ids):
            continue  # a broken image: a build says so when it uses it
        if not all(store.content.exists(layer.digest) for layer in manifest.layers):
            continue
        sources = [
            LayerSource(diff_id, _opener(store, layer))
            for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
        ]
        out.append((platform, sources))
    return out


def _opener(store: Store, desc: Descriptor) -> Callable[[], Blob]:
    return lambda: store.content.open(desc.digest, desc.size)


def unpack_image(store: Store, target: Descriptor, *, workers: int = 2) -> list[Unpacked]:
    """Unpack every platform of `target` whose content is in the store.

    A chain already unpacked (by a build, or an earlier import of the same layers) is only
    looked up. Raises the first platform's failure after the others have finished.
    """
    from bale.store.layers.unpack import unpack_chain
    from bale.store.snapshots import Snapshotter

    chains = _chains(store, target)
    if not chains:
        return []

    def one(chain: tuple[Platform, list[LayerSource]]) -> Unpacked:
        platform, layers = chain
        # One snapshotter (database connection) per worker thread.
        snapshots = Snapshotter(store.root / "snapshots")
        try:
            return Unpacked(platform, unpack_chain(snapshots, layers))
        finally:
            snapshots.close()

    if len(chains) == 1 or workers <= 1:
        return [one(chain) for chain in chains]
    with ThreadPoolExecutor(min(workers, len(chains)), thread_name_prefix="unpack") as pool:
        futures = [pool.submit(one, chain) for chain in chains]
    results: list[Unpacked] = []
    for future in futures:
        exc = future.exception()
        if exc is not None:
            raise exc
        results.append(future.result())
    return results


def unpack_arrived(
    store: Store, targets: list[Descriptor], warn: Callable[[str], None]
) -> list[Unpacked]:
    """unpack_image for what a command just stored; a failure is a warning, not an error:
    the image is stored, and a build unpacks (and reports) it when it needs it."""
    done: list[Unpacked] = []
    for target in dict.fromkeys(targets):
        try:
            done += unpack_image(store, target)
        except (BaleError, OSError) as exc:
            warn(f"{target.digest.short}: not unpacked: {exc}")
    return done
