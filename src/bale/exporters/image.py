"""From a build result to image documents in the store: each platform's config (diff ids,
history times) and manifest, then one index with an attestation manifest per platform
(containerd mode; see bale.exporters.attest), or a plain manifest (one platform in the
classic store).

    assemble(store, result, lease, attest) -> ImageOutcome
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from bale.builder.result import BuildResult, PlatformResult
from bale.builder.state import LayerRef
from bale.exporters.attest import AttestationFile, AttestOptions, attach, platform_statements
from bale.exporters.export_options import ImageFormat
from bale.oci import mediatype
from bale.oci.annotations import annotate_index, annotate_manifest, annotate_manifest_descriptor
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform
from bale.store.images import StoreMode, image_id
from bale.store.importer import rfc3339
from bale.store.local import Lease, Store


@dataclass(frozen=True)
class PlatformImage:
    platform: Platform
    config: ImageConfig
    layers: tuple[LayerRef, ...]
    # The statements a local or tar output writes beside the files (not the inline-only).
    attestations: tuple[AttestationFile, ...] = ()


@dataclass(frozen=True)
class ImageOutcome:
    target: Descriptor  # the index (or, for one platform in classic mode, the manifest)
    manifests: tuple[Descriptor, ...]
    config_digests: tuple[str, ...]
    platforms: tuple[PlatformImage, ...] = field(default=())

    @property
    def image_id(self) -> str:
        """What docker calls the image's ID (see bale.store.images.image_id)."""
        config = Digest.parse(self.config_digests[0]) if len(self.config_digests) == 1 else None
        return image_id(self.target, config)


def image_config(r: PlatformResult, epoch: int | None) -> ImageConfig:
    """The platform's config with its layers and times: each step's history entry takes the
    time its state was made (SOURCE_DATE_EPOCH when set), the image the latest of them."""

    def when(created: float | None) -> float | None:
        return float(epoch) if epoch is not None else created

    pairs = list(zip(r.config.history, r.history, strict=True))
    known = [t for _, state in pairs if state and (t := when(state.created)) is not None]
    # Config-only steps on scratch have no state time: they take the image's.
    latest = max(known) if known else time.time()
    history = []
    # A step's entry is empty_layer exactly when it added no layer (a RUN that changed
    # nothing, an existing WORKDIR, ENV...): non-empty entries must match the layers 1:1.
    count = 0
    for entry, state in pairs:
        if state is not None:
            at = when(state.created)
            entry = replace(
                entry,
                created=rfc3339(latest if at is None else at),
                empty_layer=state.layers == count,
            )
            count = state.layers
        elif not entry.empty_layer:
            count += 1
        history.append(entry)
    created: float | None = latest if any(state for _, state in pairs) else None
    if created is None and epoch is not None:
        created = float(epoch)
    return replace(
        r.config,
        diff_ids=tuple(layer.diff_id for layer in r.layers),
        history=tuple(history),
        created=rfc3339(created)
        if created is not None
        else r.config.created or rfc3339(time.time()),
    )


def assemble(
    store: Store,
    result: BuildResult,
    lease: Lease,
    attest: AttestOptions | None = None,
    *,
    inline_cache: bool = False,
    fmt: ImageFormat | None = None,
) -> ImageOutcome:
    """Configs and manifests per platform, then one index over them (OCI media types), with
    an attestation manifest per platform (provenance, SBOMs: as `attest` asks) in
    containerd mode. `fmt` gives the media types (Docker ones with oci-mediatypes=false)
    and the user's annotations."""
    fmt = fmt or ImageFormat()
    specs = fmt.image_annotations
    oci = fmt.oci_media_types
    manifests = []
    configs = []
    images = []
    for r in result.platforms:
        config = image_config(r, result.source_date_epoch)
        if inline_cache:
            # `--cache-to type=inline`: the records of this image's layers, in its config.
            from bale.builder.remotecache.export import inline_cache_config

            config = replace(config, extra=inline_cache_config(result, r))
        images.append(PlatformImage(r.platform, config, r.layers))
        for layer in r.layers:
            lease.add(layer.descriptor.digest)
        config_type = mediatype.OCI_CONFIG if oci else mediatype.DOCKER_CONFIG
        config_desc = store.put_document(config.encode(), config_type, lease)
        configs.append(str(config_desc.digest))
        manifest_type = mediatype.OCI_MANIFEST if oci else mediatype.DOCKER_MANIFEST
        manifest = Manifest(
            config=config_desc,
            layers=tuple(_layer_descriptor(x.descriptor, oci) for x in r.layers),
            media_type=manifest_type,
        )
        manifest = annotate_manifest(manifest, specs, r.platform)
        desc = store.put_document(manifest.encode(), manifest_type, lease, platform=config.platform)
        manifests.append(annotate_manifest_descriptor(desc, specs, r.platform))
    statements = (
        platform_statements(store, result, manifests, attest) if attest is not None else None
    )
    if statements is not None:
        images = [
            replace(image, attestations=tuple(f for f in files if not f.inline_only))
            for image, files in zip(images, statements, strict=True)
        ]
    if len(result.platforms) == 1 and store.mode() is StoreMode.CLASSIC:
        only = manifests[0]
        target = Descriptor(only.media_type, only.digest, only.size, annotations=only.annotations)
    else:
        entries = list(manifests)
        if attest is not None:
            entries += attach(store, lease, result, manifests, attest, statements)
        index_type = mediatype.OCI_INDEX if oci else mediatype.DOCKER_MANIFEST_LIST
        index = annotate_index(Index(manifests=tuple(entries), media_type=index_type), specs)
        target = store.put_document(index.encode(), index_type, lease)
    return ImageOutcome(target, tuple(manifests), tuple(configs), tuple(images))


def _layer_descriptor(desc: Descriptor, oci: bool) -> Descriptor:
    """Docker media types for gzip and plain layers with oci-mediatypes=false (zstd has
    none: it keeps the OCI type, as BuildKit does)."""
    if oci:
        return desc
    kind = mediatype.layer_compression(desc.media_type)
    docker = {"gzip": mediatype.DOCKER_LAYER_GZIP, "": mediatype.DOCKER_LAYER}.get(kind)
    return replace(desc, media_type=docker) if docker else desc
