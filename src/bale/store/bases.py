"""Base images already in the store: what a build uses before asking any registry.

Kept apart from the HTTP client so a build whose bases are all local never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bale.errors import BaleError
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import sniff_media_type
from bale.oci.platform import Platform
from bale.oci.reference import Reference
from bale.store.local import Store


@dataclass(frozen=True)
class BaseImage:
    """A build's base: the platform's manifest and what the reference resolved to."""

    reference: Reference
    resolved: Descriptor  # the index or manifest the reference named (for provenance)
    manifest: Descriptor  # the chosen platform's manifest
    config: ImageConfig
    exact_platform: bool  # False when a single-platform image is used for another platform
    local: bool  # True when it came from the store without asking the registry


def local_base(store: Store, ref: Reference, platform: Platform) -> BaseImage | None:
    """The base from the store when it has the reference (and the platform), else None."""
    record = store.images().find(str(ref))
    root: Descriptor | None = record.target if record is not None else None
    if root is None and ref.digest is not None and store.content.exists(ref.digest):
        data = store.content.read_bytes(ref.digest)
        root = Descriptor(sniff_media_type(data), ref.digest, len(data))
    if root is None:
        return None
    if ref.digest is not None and root.digest != ref.digest:
        return None
    try:
        candidates = store.platform_manifests(root)
    except BaleError:
        return None
    best: tuple[int, Descriptor] | None = None
    for plat, desc in candidates:
        rank = platform.rank(plat)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, desc)
    exact = best is not None
    if best is None:
        if len(candidates) != 1 or mediatype.is_index(root.media_type):
            return None
        best = (0, candidates[0][1])  # a single-platform image used for another one
    desc = best[1]
    if not store.content.exists(desc.digest):
        return None
    manifest = store.manifest(desc)
    if not store.content.exists(manifest.config.digest):
        return None
    config = store.config(manifest.config)
    return BaseImage(
        reference=ref,
        resolved=root,
        manifest=replace(desc, platform=config.platform),
        config=config,
        exact_platform=exact,
        local=True,
    )
