"""What `bale images` shows: per image, its platforms, attestations and sizes."""

from __future__ import annotations

from dataclasses import dataclass

from bale.errors import BaleError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import ATTESTATION_REF, is_attestation
from bale.oci.platform import Platform
from bale.store.local import Store


@dataclass(frozen=True)
class ManifestSummary:
    descriptor: Descriptor
    platform: Platform | None
    content_size: int  # bytes of manifest, config and layers present in the store
    available: bool  # False when this platform's content was never fetched
    attestations: tuple[ManifestSummary, ...] = ()


@dataclass(frozen=True)
class ImageSummary:
    target: Descriptor
    content_size: int
    manifests: tuple[ManifestSummary, ...]

    def created(self, store: Store) -> str:
        """The image's creation time as its config says (the first present platform's)."""
        for m in self.manifests:
            if m.available:
                try:
                    return store.config(store.manifest(m.descriptor).config).created
                except BaleError:
                    continue
        return ""


def _manifest_size(store: Store, desc: Descriptor) -> tuple[int, bool]:
    if not store.content.exists(desc.digest):
        return 0, False
    total = desc.size
    try:
        manifest = store.manifest(desc)
    except BaleError:
        return total, False
    complete = True
    for child in manifest.children():
        if store.content.exists(child.digest):
            total += child.size
        else:
            complete = False
    return total, complete


def summarize(store: Store, target: Descriptor) -> ImageSummary:
    if mediatype.is_manifest(target.media_type):
        size, complete = _manifest_size(store, target)
        platform = None
        try:
            platform = store.config(store.manifest(target).config).platform
        except BaleError:
            pass
        only = ManifestSummary(target, platform, size, complete)
        return ImageSummary(target, size, (only,))
    index = store.index(target)
    attestations: dict[str, list[ManifestSummary]] = {}
    for desc in index.manifests:
        if is_attestation(desc):
            size, complete = _manifest_size(store, desc)
            ref = desc.annotation(ATTESTATION_REF) or ""
            attestations.setdefault(ref, []).append(ManifestSummary(desc, None, size, complete))
    manifests = []
    total = target.size
    for desc in index.image_manifests():
        size, complete = _manifest_size(store, desc)
        total += size
        atts = tuple(attestations.get(str(desc.digest), ()))
        total += sum(a.content_size for a in atts)
        manifests.append(ManifestSummary(desc, desc.platform, size, complete, atts))
    return ImageSummary(target, total, tuple(manifests))
