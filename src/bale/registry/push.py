"""Pushing an image from the store: blobs (HEAD, mount or upload), then manifests children-first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from bale.errors import NotFound, RegistryError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index, Manifest
from bale.oci.reference import Reference
from bale.registry.client import Repository
from bale.registry.transfer import (
    Progress,
    ProgressEvent,
    add_source,
    byte_progress,
    parallel,
    source_repositories,
)
from bale.registry.transport import Registries
from bale.store.local import Store


@dataclass(frozen=True)
class PushResult:
    reference: Reference
    descriptor: Descriptor  # of the pushed index or manifest
    mounted: int = 0  # blobs mounted from another repository of the same registry
    uploaded: int = 0
    existing: int = 0


@dataclass(frozen=True)
class _Plan:
    manifests: tuple[tuple[Descriptor, bytes], ...]  # children first, the target last
    blobs: tuple[Descriptor, ...]


def _plan(store: Store, target: Descriptor, ref: Reference) -> _Plan:
    manifests: list[tuple[Descriptor, bytes]] = []
    blobs: dict[str, Descriptor] = {}

    def visit(desc: Descriptor, parent: str) -> None:
        if not store.content.exists(desc.digest):
            where = f" ({desc.platform})" if desc.platform is not None else ""
            raise NotFound(
                f"cannot push {ref.familiar()}: {desc.media_type}{where} {desc.digest} "
                f"of {parent} is not in the store",
                hint="pull the image with --all-platforms before pushing all of it",
            )
        data = store.read_json_blob(desc)
        if mediatype.is_index(desc.media_type):
            for child in Index.parse(data).manifests:
                visit(child, f"index {desc.digest.short}")
        elif mediatype.is_manifest(desc.media_type):
            for child in Manifest.parse(data).children():
                if not store.content.exists(child.digest):
                    raise NotFound(
                        f"cannot push {ref.familiar()}: blob {child.digest} of manifest "
                        f"{desc.digest.short} is not in the store"
                    )
                blobs.setdefault(str(child.digest), child)
        else:
            raise RegistryError(f"cannot push {ref.familiar()}: unsupported {desc.media_type}")
        if all(d.digest != desc.digest for d, _ in manifests):
            manifests.append((desc, data))

    visit(target, ref.familiar())
    return _Plan(tuple(manifests), tuple(blobs.values()))


def push_blob(
    repo: Repository,
    desc: Descriptor,
    opener: Callable[[], BinaryIO],
    sources: list[str],
    chunk_size: int,
    progress: Progress | None = None,
) -> str:
    """HEAD, else mount from a known repository, else upload; returns what happened."""
    if repo.blob_exists(desc.digest):
        if progress is not None:
            progress(ProgressEvent("exists", desc.digest, desc.size, desc.size))
        return "exists"
    location: str | None = None
    for source in sources:
        if source == repo.path:
            continue
        try:
            location = repo.mount_blob(desc.digest, source)
        except RegistryError as exc:
            if exc.status in (401, 403, 404):
                continue  # no read access to the source: upload instead
            raise
        if location is None:
            if progress is not None:
                progress(ProgressEvent("mounted", desc.digest, desc.size, desc.size))
            return "mounted"
        break  # the registry opened an upload instead of mounting; use it
    on_bytes = byte_progress(progress, desc)
    repo.upload_blob(desc, opener, chunk_size, location, on_bytes)
    if progress is not None:
        progress(ProgressEvent("done", desc.digest, desc.size, desc.size))
    return "uploaded"


def push_image(
    store: Store,
    target: Descriptor,
    ref: Reference | str,
    *,
    registries: Registries,
    by_digest: bool = False,
    progress: Progress | None = None,
) -> PushResult:
    """Push an image (every platform and attestation the target holds) to `ref`.

    `by_digest=True` (buildx's push-by-digest) pushes the content without moving a tag.
    """
    ref = ref if isinstance(ref, Reference) else Reference.parse(ref)
    plan = _plan(store, target, ref)
    repo = Repository(registries.session(ref.domain), ref.path, push=True)
    options = registries.options
    sources = {str(b.digest): source_repositories(store, b.digest, ref.domain) for b in plan.blobs}

    def one(desc: Descriptor) -> str:
        def opener() -> BinaryIO:
            return cast(BinaryIO, store.content.open(desc.digest, desc.size))

        return push_blob(
            repo, desc, opener, sources[str(desc.digest)], options.chunk_size, progress
        )

    outcomes = parallel(one, list(plan.blobs), options.max_concurrency)
    *children, (root, root_data) = plan.manifests
    for desc, data in children:
        if not repo.manifest_exists(desc.digest):
            repo.put_manifest(str(desc.digest), data, desc.media_type)
    tag = ref.tag if ref.tag and not by_digest else str(root.digest)
    if ref.digest is not None and ref.digest != root.digest:
        raise RegistryError(f"cannot push {ref.familiar()}: the image's digest is {root.digest}")
    repo.put_manifest(tag, root_data, root.media_type)
    add_source(
        store,
        [*(b.digest for b in plan.blobs), *(d.digest for d, _ in plan.manifests)],
        ref.domain,
        ref.path,
    )
    return PushResult(
        ref,
        root,
        mounted=outcomes.count("mounted"),
        uploaded=outcomes.count("uploaded"),
        existing=outcomes.count("exists"),
    )
