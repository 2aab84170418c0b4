"""Where two builds of one image differ: the first platform, document and file that is not
the same, so a build that should be reproducible says what broke it.

    first_difference(store_a, index_a, store_b, index_b) -> Difference | None

Documents (index, manifests, configs, attestation statements) are compared as JSON and the
first differing field is named (`history[3].created`); layers with different diff ids are
read entry by entry and the first differing path is named with what differs (content,
mode, owner, mtime, link target, xattrs, or present in one build only); layers with the
same diff id but different blobs differ in their compression.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from bale.exporters.attestation_manifest import read_statements
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index, is_attestation
from bale.store.compression import decompressed
from bale.store.local import Store

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Difference:
    where: str  # "linux/amd64 layer 2 of 3 (RUN …)", "linux/arm64 config", …
    what: str  # "/app/stamp: content differs", "history[3].created: … != …"

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _json_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first path at which two JSON values differ, with both values (shortened)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{sub}: only in the {'second' if key not in a else 'first'} build"
            found = _json_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = _json_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: {len(a)} entries != {len(b)}"
        return None
    if a != b:
        return f"{path or 'value'}: {_short(a)} != {_short(b)}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class _Entry:
    kind: str
    mode: int
    owner: tuple[int, int]
    mtime: int
    link: str
    xattrs: tuple[tuple[str, str], ...]
    size: int
    content: str  # sha256 of a regular file's bytes


def _entries(store: Store, layer: Descriptor) -> Iterator[tuple[str, _Entry]]:
    with store.content.open(layer.digest, layer.size) as blob:
        _, raw = decompressed(blob)
        with tarfile.open(fileobj=cast(IO[bytes], raw), mode="r|") as tar:
            for info in tar:
                content = ""
                if info.isreg():
                    h = hashlib.sha256()
                    handle = tar.extractfile(info)
                    if handle is not None:
                        while chunk := handle.read(_CHUNK):
                            h.update(chunk)
                    content = h.hexdigest()
                xattrs = tuple(
                    sorted((k, v) for k, v in info.pax_headers.items() if k.startswith("SCHILY."))
                )
                name = "/" + info.name.lstrip("./").rstrip("/")
                yield (
                    name,
                    _Entry(
                        "dir"
                        if info.isdir()
                        else "link"
                        if info.issym()
                        else "hardlink"
                        if info.islnk()
                        else "file"
                        if info.isreg()
                        else "other",
                        info.mode,
                        (info.uid, info.gid),
                        int(info.mtime),
                        info.linkname,
                        xattrs,
                        info.size,
                        content,
                    ),
                )


def _layer_difference(a: Store, la: Descriptor, b: Store, lb: Descriptor) -> str:
    first = dict(_entries(a, la))
    second = dict(_entries(b, lb))
    for name in sorted(set(first) | set(second)):
        x, y = first.get(name), second.get(name)
        if x is None or y is None:
            return f"{name}: only in the {'first' if y is None else 'second'} build"
        if x == y:
            continue
        if x.kind != y.kind:
            return f"{name}: a {x.kind} in the first build, a {y.kind} in the second"
        if x.content != y.content or x.size != y.size:
            return f"{name}: content differs"
        for field, label in (
            ("mode", "mode"),
            ("owner", "owner"),
            ("mtime", "mtime"),
            ("link", "link target"),
            ("xattrs", "xattrs"),
        ):
            va, vb = getattr(x, field), getattr(y, field)
            if va != vb:
                shown = (f"{va:o}", f"{vb:o}") if field == "mode" else (va, vb)
                return f"{name}: {label} differs ({shown[0]} != {shown[1]})"
    return "the tar streams differ in entry order or padding"


def _platform_key(desc: Descriptor) -> str:
    return str(desc.platform) if desc.platform is not None else str(desc.digest)


def _manifests(store: Store, target: Descriptor) -> tuple[dict[str, Descriptor], dict[str, Any]]:
    if not mediatype.is_index(target.media_type):
        return {"image": target}, {}
    index = Index.parse(store.read_json_blob(target))
    images = {_platform_key(d): d for d in index.image_manifests()}
    by_digest = {str(d.digest): k for k, d in images.items()}
    attestations = {
        by_digest.get(d.annotation("vnd.docker.reference.digest") or "", str(d.digest)): d
        for d in index.manifests
        if is_attestation(d)
    }
    return images, attestations


def _layer_names(config: ImageConfig) -> list[str]:
    return [h.created_by for h in config.history if not h.empty_layer]


def _image_difference(
    a: Store, da: Descriptor, b: Store, db: Descriptor, label: str
) -> Difference | None:
    ma, mb = a.manifest(da), b.manifest(db)
    if ma.config.digest != mb.config.digest:
        ca = json.loads(a.read_json_blob(ma.config))
        cb = json.loads(b.read_json_blob(mb.config))
        found = _json_difference(ca, cb)
        if found and not found.startswith("rootfs.diff_ids"):
            return Difference(f"{label} config", found)
    names = _layer_names(a.config(ma.config))
    total = len(ma.layers)
    for i, (la, lb) in enumerate(zip(ma.layers, mb.layers, strict=False)):
        if la.digest == lb.digest:
            continue
        step = f" ({names[i]})" if i < len(names) else ""
        where = f"{label} layer {i + 1} of {total}{step}"
        ca, cb = a.config(ma.config), b.config(mb.config)
        if ca.diff_ids[i] == cb.diff_ids[i]:
            return Difference(where, "same files, different compressed bytes (compressor)")
        return Difference(where, _layer_difference(a, la, b, lb))
    if len(ma.layers) != len(mb.layers):
        return Difference(label, f"{len(ma.layers)} layers != {len(mb.layers)}")
    found = _json_difference(ma.to_json(), mb.to_json())
    return Difference(f"{label} manifest", found or "the bytes differ")


def first_difference(a: Store, ta: Descriptor, b: Store, tb: Descriptor) -> Difference | None:
    """None when the two images are the same bytes, else the first difference found."""
    if ta.digest == tb.digest:
        return None
    images_a, atts_a = _manifests(a, ta)
    images_b, atts_b = _manifests(b, tb)
    if sorted(images_a) != sorted(images_b):
        return Difference("index", f"platforms {sorted(images_a)} != {sorted(images_b)}")
    for key in sorted(images_a):
        da, db = images_a[key], images_b[key]
        if da.digest != db.digest:
            return _image_difference(a, da, b, db, key)
    for key in sorted(set(atts_a) | set(atts_b)):
        xa, xb = atts_a.get(key), atts_b.get(key)
        if xa is None or xb is None:
            return Difference(f"{key} attestations", "present in one build only")
        if xa.digest != xb.digest:
            found = _json_difference(read_statements(a, xa), read_statements(b, xb))
            return Difference(f"{key} attestations", found or "the manifests differ")
    found = _json_difference(json.loads(a.read_json_blob(ta)), json.loads(b.read_json_blob(tb)))
    return Difference("index", found or "the bytes differ")
