"""`imagetools`: inspect remote images and assemble an index from per-platform pushes."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO, cast

import httpx

from bale.errors import InvalidArgument, RegistryError
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.registry.client import RemoteDocument, Repository, parse_remote
from bale.registry.errors import transport_error
from bale.registry.reference import Reference
from bale.registry.transfer import resolve
from bale.registry.transport import Registries


@dataclass(frozen=True)
class _Source:
    repo: Repository
    descriptor: Descriptor


def inspect(registries: Registries, ref: Reference) -> RemoteDocument:
    """The manifest or index a reference names, byte for byte."""
    return resolve(registries, ref)[1]


def platform_of(repo: Repository, doc: RemoteDocument) -> Descriptor:
    """A manifest's descriptor with the platform its config declares."""
    manifest = parse_remote(Manifest.parse, doc.data, f"{repo}@{doc.descriptor.digest}")
    where = f"{repo}@{manifest.config.digest}"
    config = parse_remote(ImageConfig.parse, repo.read_blob(manifest.config), where)
    return replace(doc.descriptor, platform=config.platform)


def create(
    registries: Registries,
    sources: Sequence[Reference],
    targets: Sequence[Reference],
    *,
    dry_run: bool = False,
) -> RemoteDocument:
    """Merge the manifests of `sources` into one index and push it to every target (buildx)."""
    if not sources:
        raise InvalidArgument("imagetools create needs at least one source image")
    entries: dict[str, _Source] = {}
    for ref in sources:
        repo, root = resolve(registries, ref)
        if mediatype.is_index(root.descriptor.media_type):
            where = f"{repo}@{root.descriptor.digest}"
            descs = list(parse_remote(Index.parse, root.data, where).manifests)
        else:
            descs = [platform_of(repo, root)]
        for desc in descs:
            entries.setdefault(str(desc.digest), _Source(repo, desc))
    children = tuple(e.descriptor for e in entries.values())
    docker_only = all(d.media_type == mediatype.DOCKER_MANIFEST for d in children)
    media_type = mediatype.DOCKER_MANIFEST_LIST if docker_only else mediatype.OCI_INDEX
    data = Index(children, media_type).encode()
    doc = RemoteDocument(Descriptor(media_type, Digest.of(data), len(data)), data)
    if dry_run:
        return doc
    for target in targets:
        dest = Repository(registries.session(target.domain), target.path, push=True)
        for entry in entries.values():
            _copy_manifest(entry.repo, dest, entry.descriptor, registries.options.chunk_size)
        dest.put_manifest(target.tag or str(doc.descriptor.digest), data, media_type)
    return doc


def _same_repo(a: Repository, b: Repository) -> bool:
    return a.domain == b.domain and a.path == b.path


def _copy_manifest(src: Repository, dest: Repository, desc: Descriptor, chunk_size: int) -> None:
    if _same_repo(src, dest) or dest.manifest_exists(desc.digest):
        return
    doc = src.get_manifest(str(desc.digest), expected=desc)
    if mediatype.is_index(desc.media_type):
        for child in parse_remote(Index.parse, doc.data, f"{src}@{desc.digest}").manifests:
            _copy_manifest(src, dest, child, chunk_size)
    else:
        for blob in parse_remote(Manifest.parse, doc.data, f"{src}@{desc.digest}").children():
            _copy_blob(src, dest, blob, chunk_size)
    dest.put_manifest(str(desc.digest), doc.data, desc.media_type)


def _copy_blob(src: Repository, dest: Repository, desc: Descriptor, chunk_size: int) -> None:
    if dest.blob_exists(desc.digest):
        return
    location: str | None = None
    if src.domain == dest.domain:
        try:
            location = dest.mount_blob(desc.digest, src.path)
        except RegistryError as exc:
            if exc.status not in (401, 403, 404):
                raise
        else:
            if location is None:
                return
    with tempfile.TemporaryFile() as spool:
        _download(src, desc, spool)

        def opener() -> BinaryIO:
            spool.seek(0)
            return cast(BinaryIO, _Unclosing(spool))

        dest.upload_blob(desc, opener, chunk_size, location)


def _download(src: Repository, desc: Descriptor, out: BinaryIO) -> None:
    what = f"fetch blob {src}@{desc.digest}"
    hasher = hashlib.new(desc.digest.algorithm)
    size = 0
    try:
        with src.session.operation(what, "blob"):
            for chunk in src.iter_blob(desc):
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise transport_error(exc, what, src.domain) from None
    if size != desc.size or hasher.hexdigest() != desc.digest.hex:
        raise RegistryError(f"{what}: rejected content that does not match its descriptor")


class _Unclosing:
    """A file the upload may 'close' without closing the spool it reads."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def __enter__(self) -> _Unclosing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
