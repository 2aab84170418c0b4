"""`bale load`: OCI image layout archives and docker archives, from a file or stdin.

Every member is streamed into the content store and verified; names that would escape the
archive are rejected; nothing is named until every referenced blob is present and valid; on any
failure the blobs this load created are removed again, so the store is as it was.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from bale.errors import BaleError, DigestMismatch, InvalidArgument, MultiPlatformRefused, NotFound
from bale.oci import canonical, jsonread, mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import CONTAINERD_IMAGE_NAME, REF_NAME, Index, Manifest
from bale.oci.reference import Reference
from bale.store.compression import decompressed, sniff
from bale.store.images import DANGLING_PREFIX, StoreMode
from bale.store.local import Lease, Store

_SMALL = 16 << 20  # members kept in memory too: index.json, manifest.json, configs


@dataclass(frozen=True)
class Loaded:
    name: str  # normalized reference, or "" when the archive gave none
    target: Descriptor


class _Member:
    def __init__(self, digest: Digest, size: int, data: bytes | None) -> None:
        self.digest = digest
        self.size = size
        self.data = data


def _safe_name(name: str) -> str:
    if name.startswith("/") or "\\" in name:
        raise InvalidArgument(f"archive member {name!r} has an absolute or invalid path")
    normalized = posixpath.normpath(name)
    if normalized == ".." or normalized.startswith("../") or "/../" in f"/{name}/":
        raise InvalidArgument(f"archive member {name!r} escapes the archive")
    return normalized


class _HashingReader:
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.hash = hashlib.sha256()
        self.head = b""
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._stream.read(n)
        if len(self.head) < _SMALL:
            self.head += data[: _SMALL - len(self.head)]
        self.hash.update(data)
        self.size += len(data)
        return data


def load_archive(store: Store, stream: BinaryIO) -> list[Loaded]:
    with store.lease() as lease:
        members = _ingest_members(store, stream, lease)
        if "index.json" in members:
            loaded = _from_oci_layout(store, members, lease)
        elif "manifest.json" in members:
            loaded = _from_docker_archive(store, members, lease)
        else:
            raise InvalidArgument(
                "not an image archive: no index.json (OCI layout) or manifest.json (docker)"
            )
        if store.mode() is StoreMode.CLASSIC:
            loaded = [Loaded(x.name, _classic_target(store, x.target)) for x in loaded]
        with store.edit_images() as images:
            for item in loaded:
                images.put(item.name or DANGLING_PREFIX + str(item.target.digest), item.target)
        # index.json, oci-layout, manifest.json and blobs no image uses were ingested too.
        store.discard_unreferenced(_unused(store, lease.created, loaded), lease.id)
    return loaded


def ingest_layout(store: Store, stream: BinaryIO, lease: Lease) -> list[Descriptor]:
    """The top descriptors of an OCI layout tar, every blob verified into the store under
    `lease`, nothing named (what a node sends back for the coordinator to assemble)."""
    members = _ingest_members(store, stream, lease)
    if "index.json" not in members:
        raise InvalidArgument("not an OCI image layout: no index.json")
    return [item.target for item in _from_oci_layout(store, members, lease)]


def ingest_documents(store: Store, stream: BinaryIO, lease: Lease) -> list[Descriptor]:
    """Like `ingest_layout` for a layout that carries only documents (its layers are in a
    registry already): each blob verified against its name, the tree not required whole."""
    members = _ingest_members(store, stream, lease)
    index = Index.parse(_member_bytes(members, "index.json"))
    for desc in index.manifests:
        if not store.content.exists(desc.digest):
            raise NotFound(f"archive lacks blob {desc.digest} ({desc.media_type})")
        store.record_refs(desc.digest, store.read_json_blob(desc), desc.media_type)
    return [Descriptor(d.media_type, d.digest, d.size) for d in index.manifests]


def _unused(store: Store, created: set[Digest], loaded: list[Loaded]) -> set[Digest]:
    used: set[Digest] = set()
    todo = [item.target for item in loaded]
    while todo:
        desc = todo.pop()
        if desc.digest in used or not store.content.exists(desc.digest):
            continue
        used.add(desc.digest)
        if mediatype.is_index(desc.media_type):
            todo.extend(store.index(desc).manifests)
        elif mediatype.is_manifest(desc.media_type):
            todo.extend(store.manifest(desc).children())
    return created - used


def _ingest_members(store: Store, stream: BinaryIO, lease: Lease) -> dict[str, _Member]:
    members: dict[str, _Member] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                name = _safe_name(info.name)
                if info.issym() or info.islnk():
                    target = info.linkname
                    if info.issym():
                        # Relative to the link's directory: `<id>/layer.tar -> ../<hex>.tar`.
                        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
                    links[name] = _safe_name(target)
                    continue
                if not info.isfile():
                    continue
                f = tar.extractfile(info)
                assert f is not None
                reader = _HashingReader(f)
                expected = _blob_digest(name)
                digest, _ = store.ingest(reader, lease=lease)  # type: ignore[arg-type]
                if expected is not None and expected != digest:
                    raise DigestMismatch(
                        f"archive blob {name} has digest {digest}; its name promises {expected}"
                    )
                small = reader.head if reader.size <= _SMALL else None
                members[name] = _Member(digest, reader.size, small)
    except tarfile.TarError as exc:
        raise InvalidArgument(f"corrupt or truncated archive: {exc}") from None
    except EOFError:
        raise InvalidArgument("truncated archive") from None
    for name, target in links.items():
        seen = 0
        while target in links and seen < 40:
            target, seen = links[target], seen + 1
        if target not in members:
            raise InvalidArgument(f"archive link {name} points at missing {target}")
        members[name] = members[target]
    return members


def _blob_digest(name: str) -> Digest | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return Digest(parts[1], parts[2])
        except BaleError:
            raise InvalidArgument(f"archive blob name {name!r} is not a valid digest") from None
    return None


def _member_bytes(members: dict[str, _Member], name: str) -> bytes:
    member = members.get(name)
    if member is None:
        raise InvalidArgument(f"archive lacks {name}")
    if member.data is None:
        raise InvalidArgument(f"archive member {name} is too large for a JSON document")
    return member.data


def _from_oci_layout(store: Store, members: dict[str, _Member], lease: Lease) -> list[Loaded]:
    layout = members.get("oci-layout")
    if layout is not None and layout.data is not None:
        obj = canonical.loads_object(layout.data, "oci-layout")
        if obj.get("imageLayoutVersion") != "1.0.0":
            raise InvalidArgument("unsupported oci-layout version")
    try:
        index = Index.parse(_member_bytes(members, "index.json"))
    except InvalidArgument as exc:
        raise exc.with_context("index.json") from None
    loaded = []
    for desc in index.manifests:
        _validate_tree(store, desc, lease, top=True)
        plain = desc.with_annotation_map(
            {
                k: v
                for k, v in desc.annotation_map.items()
                if k not in (CONTAINERD_IMAGE_NAME, REF_NAME)
            }
        )
        loaded.append(
            Loaded(_name_of(desc), Descriptor(plain.media_type, plain.digest, plain.size))
        )
    return loaded


def _name_of(desc: Descriptor) -> str:
    name = desc.annotation(CONTAINERD_IMAGE_NAME) or ""
    if not name:
        ref_name = desc.annotation(REF_NAME) or ""
        # A bare tag ("1.0") names nothing on its own; a full reference does.
        if ref_name and ("/" in ref_name or ":" in ref_name):
            name = ref_name
    if not name:
        return ""
    try:
        return str(Reference.parse(name))
    except BaleError:
        raise InvalidArgument(f"archive names an image {name!r}, not a valid reference") from None


T = TypeVar("T")


def _parsed(parse: Callable[[bytes], T], data: bytes, desc: Descriptor) -> T:
    """A document of the archive, its errors naming the blob."""
    try:
        return parse(data)
    except InvalidArgument as exc:
        raise exc.with_context(f"archive blob {desc.digest}") from None


def _validate_tree(store: Store, desc: Descriptor, lease: Lease, *, top: bool) -> None:
    """Every blob the descriptor needs is present with its size; documents parse; refs noted."""
    if not store.content.exists(desc.digest):
        if top or (
            not mediatype.is_manifest(desc.media_type) and not mediatype.is_index(desc.media_type)
        ):
            raise NotFound(f"archive lacks blob {desc.digest} ({desc.media_type})")
        return  # a platform the archive does not carry
    info = store.content.info(desc.digest)
    if info.size != desc.size:
        raise DigestMismatch(
            f"blob {desc.digest} is {info.size} bytes, descriptor says {desc.size}"
        )
    if mediatype.is_index(desc.media_type):
        data = store.read_json_blob(desc)
        index = _parsed(Index.parse, data, desc)
        for child in index.manifests:
            _validate_tree(store, child, lease, top=False)
        store.record_refs(desc.digest, data, desc.media_type)
    elif mediatype.is_manifest(desc.media_type):
        data = store.read_json_blob(desc)
        manifest = _parsed(Manifest.parse, data, desc)
        config_type = manifest.config.media_type
        # Artifact manifests may carry other config types (or the empty one); images may not.
        known = config_type in mediatype.CONFIGS or config_type == mediatype.OCI_EMPTY
        if not known and not manifest.artifact_type:
            raise InvalidArgument(f"unknown config media type {manifest.config.media_type!r}")
        for layer in manifest.layers:
            if not (mediatype.is_layer(layer.media_type) or layer.media_type == mediatype.IN_TOTO):
                raise InvalidArgument(f"unknown layer media type {layer.media_type!r}")
        for child in manifest.children():
            _validate_tree(store, child, lease, top=False)
        if manifest.config.media_type in mediatype.CONFIGS:
            _parsed(ImageConfig.parse, store.read_json_blob(manifest.config), manifest.config)
        store.record_refs(desc.digest, data, desc.media_type)
    elif (
        desc.media_type in mediatype.CONFIGS
        or mediatype.is_layer(desc.media_type)
        or desc.media_type in (mediatype.IN_TOTO, mediatype.OCI_EMPTY)
    ):
        pass
    else:
        raise InvalidArgument(f"unknown media type {desc.media_type!r} in archive")


def _from_docker_archive(store: Store, members: dict[str, _Member], lease: Lease) -> list[Loaded]:
    doc = jsonread.loads(_member_bytes(members, "manifest.json"), "manifest.json", limit=_SMALL)
    if not isinstance(doc, list) or not doc:
        raise InvalidArgument("malformed manifest.json: expected a non-empty list")
    loaded: list[Loaded] = []
    for entry in doc:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument("malformed manifest.json entry: missing Config")
        config_name = _safe_name(entry["Config"])
        config_bytes = _member_bytes(members, config_name)
        config = ImageConfig.parse(config_bytes)
        layer_paths = entry.get("Layers") or []
        if not isinstance(layer_paths, list) or len(layer_paths) != len(config.diff_ids):
            raise InvalidArgument("docker archive: Layers does not match the config's diff_ids")
        layers = []
        for path, diff_id in zip(layer_paths, config.diff_ids, strict=True):
            member = members.get(_safe_name(str(path)))
            if member is None:
                raise InvalidArgument(f"docker archive lacks layer {path}")
            layers.append(_docker_layer(store, member, diff_id))
        config_desc = store.put_document(config_bytes, mediatype.OCI_CONFIG, lease)
        manifest = Manifest(config=config_desc, layers=tuple(layers))
        target = store.put_document(
            manifest.encode(), mediatype.OCI_MANIFEST, lease, platform=config.platform
        )
        target = Descriptor(target.media_type, target.digest, target.size)
        tags = entry.get("RepoTags") or []
        if not tags:
            loaded.append(Loaded("", target))
        for tag in tags:
            loaded.append(Loaded(str(Reference.parse(str(tag))), target))
    return loaded


def _docker_layer(store: Store, member: _Member, diff_id: Digest) -> Descriptor:
    with store.content.open(member.digest, member.size) as reader:
        head = reader.read(8)
    kind = sniff(head)
    if kind == "":
        if member.digest != diff_id:
            raise DigestMismatch(f"layer {member.digest} does not match diff id {diff_id}")
        return Descriptor(mediatype.OCI_LAYER, member.digest, member.size)
    with store.content.open(member.digest, member.size) as reader:
        _, raw = decompressed(reader)
        h = hashlib.sha256()
        while chunk := raw.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != diff_id.hex:
        raise DigestMismatch(f"layer {member.digest} does not match diff id {diff_id}")
    media = {"gzip": mediatype.OCI_LAYER_GZIP, "zstd": mediatype.OCI_LAYER_ZSTD}.get(kind)
    if media is None:
        raise InvalidArgument(f"unsupported layer compression {kind}")
    return Descriptor(media, member.digest, member.size)


def _classic_target(store: Store, target: Descriptor) -> Descriptor:
    """Classic mode holds one manifest: an index of exactly one platform is unwrapped."""
    if not mediatype.is_index(target.media_type):
        return target
    platforms = [d for _, d in store.platform_manifests(target) if store.content.exists(d.digest)]
    if len(platforms) != 1:
        raise MultiPlatformRefused()
    only = platforms[0]
    return Descriptor(only.media_type, only.digest, only.size)
