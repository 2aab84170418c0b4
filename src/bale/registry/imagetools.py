"""`imagetools`: inspect remote images and assemble an index from per-platform pushes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, cast

import httpx

from bale.errors import InvalidArgument, RegistryError
from bale.oci import jsonread, mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import ATTESTATION_REF, Index, Manifest
from bale.oci.reference import Reference
from bale.registry.client import RemoteDocument, Repository, parse_remote
from bale.registry.errors import transport_error
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
    return replace(doc.descriptor, platform=repo_config(repo, manifest).platform)


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


# -- what `imagetools inspect --format` reads ------------------------------------------------

# The annotations naming the manifest an attestation manifest describes (buildx reads both).
REFERENCE_ANNOTATIONS = ("com.docker.reference.digest", ATTESTATION_REF)
SLSA_PREFIX = "https://slsa.dev/provenance/"
SPDX = "https://spdx.dev/Document"
PREDICATE_TYPE = "in-toto.io/predicate-type"
_DSSE = re.compile(r"application/vnd\.in-toto\..*\+dsse")
# Attestation blobs are read into memory; BuildKit caps each attestation file at 40 MiB.
MAX_ATTESTATION = 64 << 20
# A bound on the documents one inspection fetches, against an index of indexes of indexes.
MAX_DOCUMENTS = 4096


@dataclass(frozen=True)
class PlatformImage:
    """One platform of an inspected image and what its attestations say about it."""

    platform: str  # containerd's normalized form: linux/arm64, linux/arm/v7
    manifest: Descriptor
    config: dict[str, Any]  # the image config document as sent
    provenance: tuple[Any, ...]  # the SLSA predicate, when there is one
    sboms: tuple[Any, ...]  # SPDX predicates, in index order


@dataclass(frozen=True)
class Inspection:
    document: RemoteDocument  # what the reference names
    images: tuple[PlatformImage, ...]  # sorted by platform


@dataclass
class _Walk:
    repo: Repository
    manifests: dict[Digest, tuple[Descriptor, Manifest]] = field(default_factory=dict)
    images: dict[str, Digest] = field(default_factory=dict)
    refs: dict[Digest, list[Digest]] = field(default_factory=dict)
    fetched: int = 0


def load(registries: Registries, ref: Reference) -> Inspection:
    """The image a reference names, per platform: config, provenance and SBOMs (buildx's
    loader). Attestations are found in BuildKit's two layouts: an attestation manifest named
    by the index entry's `vnd.docker.reference.digest`, or an artifact of type
    ATTESTATION_ARTIFACT whose `subject` is the image manifest."""
    repo, root = resolve(registries, ref)
    walk = _Walk(repo)
    _visit(walk, root, depth=0)
    images = []
    for platform in sorted(walk.images):
        digest = walk.images[platform]
        desc, manifest = walk.manifests[digest]
        where = f"{repo}@{manifest.config.digest}"
        config = parse_remote(
            lambda d: jsonread.loads_object(d, "image config"),
            repo.read_blob(manifest.config),
            where,
        )
        provenance: tuple[Any, ...] = ()
        sboms: list[Any] = []
        for att in walk.refs.get(digest, []):
            found_slsa = False
            for layer in walk.manifests[att][1].layers:
                kind = layer.annotation(PREDICATE_TYPE) or ""
                if layer.media_type != mediatype.IN_TOTO and not _DSSE.fullmatch(layer.media_type):
                    continue
                if kind == SPDX:
                    sboms.append(_predicate(repo, layer))
                elif kind.startswith(SLSA_PREFIX) and not found_slsa:
                    provenance, found_slsa = (_predicate(repo, layer),), True
        images.append(PlatformImage(platform, desc, config, provenance, tuple(sboms)))
    return Inspection(root, tuple(images))


def _visit(walk: _Walk, doc: RemoteDocument, depth: int) -> None:
    walk.fetched += 1
    desc = doc.descriptor
    where = f"{walk.repo}@{desc.digest}"
    if walk.fetched > MAX_DOCUMENTS or depth > 8:
        raise RegistryError(f"{where}: indexes nested too deep or too many to inspect")
    if mediatype.is_index(desc.media_type):
        for child in parse_remote(Index.parse, doc.data, where).manifests:
            if mediatype.is_index(child.media_type) or mediatype.is_manifest(child.media_type):
                child_doc = walk.repo.get_manifest(str(child.digest), expected=child)
                _visit(walk, child_doc, depth + 1)
        return
    manifest = parse_remote(Manifest.parse, doc.data, where)
    walk.manifests[desc.digest] = (desc, manifest)
    subject = _described(desc, manifest, where)
    if subject is not None:
        walk.refs.setdefault(subject, []).append(desc.digest)
        return
    platform = desc.platform
    if platform is None:
        config = repo_config(walk.repo, manifest)
        platform = config.platform
    walk.images[str(platform)] = desc.digest


def _described(desc: Descriptor, manifest: Manifest, where: str) -> Digest | None:
    """The manifest an attestation manifest describes; None for an image."""
    for key in REFERENCE_ANNOTATIONS:
        value = desc.annotation(key)
        if value is not None:
            return parse_remote(lambda d: Digest.parse(d.decode()), value.encode(), where)
    artifact = manifest.artifact_type or desc.artifact_type
    if artifact == mediatype.ATTESTATION_ARTIFACT and manifest.subject is not None:
        return manifest.subject.digest
    return None


def repo_config(repo: Repository, manifest: Manifest) -> ImageConfig:
    where = f"{repo}@{manifest.config.digest}"
    return parse_remote(ImageConfig.parse, repo.read_blob(manifest.config), where)


def _predicate(repo: Repository, layer: Descriptor) -> Any:
    """An in-toto statement's predicate, numbers as Go reads them into `any` (floats)."""
    where = f"{repo}@{layer.digest}"
    data = repo.read_blob(layer, limit=MAX_ATTESTATION)
    if _DSSE.fullmatch(layer.media_type):
        envelope = parse_remote(lambda d: jsonread.loads_object(d, "DSSE envelope"), data, where)
        try:
            data = base64.b64decode(str(envelope.get("payload", "")), validate=True)
        except binascii.Error:
            raise RegistryError(f"{where}: the DSSE payload is not base64") from None
    statement = parse_remote(
        lambda d: jsonread.loads(d, "in-toto statement", parse_int=float), data, where
    )
    return statement.get("predicate") if isinstance(statement, dict) else None
