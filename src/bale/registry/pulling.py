"""Pulling: `bale pull`, and the base images a build starts FROM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bale.errors import NotFound, RegistryError
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform, host_platform
from bale.oci.reference import Reference
from bale.registry.client import RemoteDocument, Repository, parse_remote
from bale.registry.transfer import (
    Progress,
    ProgressEvent,
    add_source,
    byte_progress,
    discard_created,
    parallel,
    pull_repositories,
    resolve,
)
from bale.registry.transport import Registries
from bale.store.bases import BaseImage, local_base
from bale.store.local import Lease, Store


@dataclass(frozen=True)
class PullResult:
    reference: Reference
    target: Descriptor  # what the name now points at: the index or the manifest
    manifests: tuple[Descriptor, ...]  # the platform manifests whose content was fetched


@dataclass(frozen=True)
class _Image:
    manifest: RemoteDocument
    config: RemoteDocument
    parsed: Manifest


def _as_reference(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else Reference.parse(ref)


def _available(index: Index) -> str:
    plats = sorted({str(m.platform) for m in index.image_manifests() if m.platform is not None})
    return ", ".join(plats) or "none"


def select_manifest(index: Index, platform: Platform) -> Descriptor | None:
    """The index entry best matching the platform (containerd's ordering)."""
    best: tuple[int, Descriptor] | None = None
    for desc in index.image_manifests():
        if desc.platform is None:
            continue
        rank = platform.rank(desc.platform)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, desc)
    return best[1] if best else None


def _fetch_image(repo: Repository, doc: RemoteDocument) -> _Image:
    if not mediatype.is_manifest(doc.descriptor.media_type):
        raise RegistryError(
            f"{repo}@{doc.descriptor.digest}: nested {doc.descriptor.media_type} is not supported"
        )
    parsed = parse_remote(Manifest.parse, doc.data, f"{repo}@{doc.descriptor.digest}")
    config_data = repo.read_blob(parsed.config)
    return _Image(doc, RemoteDocument(parsed.config, config_data), parsed)


def _config(repo: Repository, image: _Image) -> ImageConfig:
    where = f"{repo}@{image.config.descriptor.digest}"
    return parse_remote(ImageConfig.parse, image.config.data, where)


def _store_documents(
    store: Store, images: Sequence[_Image], root: RemoteDocument, lease: Lease
) -> None:
    for image in images:
        store.put_blob(image.config.data, lease)
        if image.manifest is not root:
            store.put_document(image.manifest.data, image.manifest.descriptor.media_type, lease)
    store.put_document(root.data, root.descriptor.media_type, lease)


def _fetch_layers(
    store: Store,
    repos: Sequence[Repository],
    layers: Sequence[Descriptor],
    lease: Lease,
    workers: int,
    progress: Progress | None,
) -> list[Digest]:
    """Parallel layer downloads; returns the digests this call created."""
    unique = list({d.digest: d for d in layers}.values())
    wanted = [d for d in unique if not store.content.exists(d.digest)]
    if progress is not None:
        for desc in unique:
            if desc not in wanted:
                progress(ProgressEvent("exists", desc.digest, desc.size, desc.size))
    for desc in wanted:
        lease.add(desc.digest)  # leased up front: the worker threads never touch SQLite

    def one(desc: Descriptor) -> Digest | None:
        on_bytes = byte_progress(progress, desc)
        created = False
        for i, repo in enumerate(repos):
            try:
                created = repo.fetch_blob(store.content, desc, on_bytes)
                break
            except RegistryError:
                if i == len(repos) - 1:
                    raise
        if progress is not None:
            progress(ProgressEvent("done", desc.digest, desc.size, desc.size))
        return desc.digest if created else None

    created: list[Digest] = []
    try:
        for digest in parallel(one, wanted, workers):
            if digest is not None:
                created.append(digest)
    except BaseException:
        # Blobs that other workers finished are verified but unused: leave no trace.
        discard_created(store, [d.digest for d in wanted], lease.id)
        raise
    return created


def pull(
    store: Store,
    ref: Reference | str,
    *,
    registries: Registries,
    platforms: Sequence[Platform] = (),
    all_platforms: bool = False,
    progress: Progress | None = None,
) -> PullResult:
    """Fetch an image (the index and the chosen platforms' content) and name it."""
    ref = _as_reference(ref)
    repo, root = resolve(registries, ref)
    repos = [repo, *[r for r in pull_repositories(registries, ref) if r.domain != repo.domain]]
    explicit = bool(platforms)
    wanted = list(platforms) or [host_platform()]
    images: list[_Image] = []
    if mediatype.is_index(root.descriptor.media_type):
        index = parse_remote(Index.parse, root.data, f"{repo}@{root.descriptor.digest}")
        if all_platforms:
            chosen = list(index.manifests)
        else:
            chosen = []
            for plat in wanted:
                desc = select_manifest(index, plat)
                if desc is None:
                    raise NotFound(
                        f"{ref.familiar()}: no matching manifest for {plat} in the manifest "
                        f"list entries (available: {_available(index)})"
                    )
                chosen.append(desc)
            # Attestations of the chosen manifests come along, as BuildKit stores them.
            picked = {str(d.digest) for d in chosen}
            chosen += [
                a
                for a in index.attestations()
                if a.annotation("vnd.docker.reference.digest") in picked
            ]
        for desc in dict.fromkeys(chosen):
            images.append(_fetch_image(repo, repo.get_manifest(str(desc.digest), expected=desc)))
    else:
        image = _fetch_image(repo, root)
        actual = _config(repo, image).platform
        if explicit and not any(p.rank(actual) is not None for p in wanted):
            raise NotFound(
                f"{ref.familiar()}: image is for {actual}, which does not match the "
                f"requested platform {', '.join(str(p) for p in wanted)}"
            )
        images.append(image)
    layers = [layer for image in images for layer in image.parsed.layers]
    with store.lease() as lease:
        for image in images:
            lease.add(image.manifest.descriptor.digest)
            lease.add(image.config.descriptor.digest)
        lease.add(root.descriptor.digest)
        _fetch_layers(store, repos, layers, lease, registries.options.max_concurrency, progress)
        _store_documents(store, images, root, lease)
        digests = [root.descriptor.digest]
        for image in images:
            digests.append(image.manifest.descriptor.digest)
            digests.extend(c.digest for c in image.parsed.children())
        add_source(store, digests, ref.domain, ref.path)
        store.set_image(str(ref), root.descriptor)
    return PullResult(ref, root.descriptor, tuple(i.manifest.descriptor for i in images))


def ensure_image(
    store: Store,
    ref: Reference | str,
    platform: Platform,
    *,
    registries: Registries | None = None,
    pull: bool = False,
    lease: Lease | None = None,
) -> BaseImage:
    """The base image for one platform: from the store when present, else from its registry.

    Only the documents are fetched (index, manifest, config); `fetch_layers` brings the layers
    when a step needs the root filesystem. Pass the build's lease so GC keeps them meanwhile.
    `pull=True` asks the registry even when the store has the name (`--pull`).
    """
    ref = _as_reference(ref)
    if not pull:
        local = local_base(store, ref, platform)
        if local is not None:
            return local
    if registries is None:
        raise NotFound(f"{ref.familiar()}: not in the store, and no registry access was given")
    repo, root = resolve(registries, ref)
    if mediatype.is_index(root.descriptor.media_type):
        index = parse_remote(Index.parse, root.data, f"{repo}@{root.descriptor.digest}")
        desc = select_manifest(index, platform)
        if desc is None:
            raise NotFound(
                f"{ref.familiar()}: no match for platform {platform} in the manifest list "
                f"(available: {_available(index)})",
                hint="build only for platforms the base image has, or pick another base",
            )
        image = _fetch_image(repo, repo.get_manifest(str(desc.digest), expected=desc))
    else:
        image = _fetch_image(repo, root)
    config = _config(repo, image)
    manifest = replace(image.manifest.descriptor, platform=config.platform)
    with _maybe_lease(store, lease) as held:
        for digest in (root.descriptor.digest, manifest.digest, image.config.descriptor.digest):
            held.add(digest)
        _store_documents(store, [image], root, held)
        add_source(
            store,
            [root.descriptor.digest, manifest.digest, *(c.digest for c in image.parsed.children())],
            ref.domain,
            ref.path,
        )
    return BaseImage(
        reference=ref,
        resolved=root.descriptor,
        manifest=manifest,
        config=config,
        exact_platform=platform.rank(config.platform) is not None,
        local=False,
    )


def fetch_layers(
    store: Store,
    ref: Reference | str,
    manifest: Descriptor,
    *,
    registries: Registries,
    lease: Lease | None = None,
    progress: Progress | None = None,
) -> list[Digest]:
    """Bring a manifest's missing layers into the store (in parallel); returns those created."""
    ref = _as_reference(ref)
    parsed = store.manifest(manifest)
    missing = [d for d in parsed.layers if not store.content.exists(d.digest)]
    if not missing:
        return []
    repos = pull_repositories(registries, ref)
    with _maybe_lease(store, lease) as held:
        created = _fetch_layers(
            store, repos, missing, held, registries.options.max_concurrency, progress
        )
        add_source(store, [d.digest for d in missing], ref.domain, ref.path)
    return created


class _maybe_lease:
    """The caller's lease, or a fresh one for the duration of the block."""

    def __init__(self, store: Store, lease: Lease | None) -> None:
        self._store = store
        self._lease = lease
        self._context: object = None

    def __enter__(self) -> Lease:
        if self._lease is not None:
            return self._lease
        context = self._store.lease()
        self._context = context
        return context.__enter__()

    def __exit__(self, *exc: object) -> None:
        context = self._context
        if context is not None:
            context.__exit__(*exc)  # type: ignore[attr-defined]
