"""`bale store check`: re-hash every blob and check every reference."""

from __future__ import annotations

from dataclasses import dataclass

from bale.errors import BaleError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.store.content import is_read_only
from bale.store.local import Store


@dataclass(frozen=True)
class Problem:
    subject: str
    message: str


def check_store(store: Store) -> list[Problem]:
    problems: list[Problem] = []
    for blob in store.content.walk():
        try:
            store.content.verify(blob.digest)
        except BaleError as exc:
            problems.append(Problem(str(blob.digest), exc.message))
            continue
        if not is_read_only(blob.path):
            problems.append(Problem(str(blob.digest), "blob is writable"))
    db = store.meta._db
    for mode, name, media_type, digest, size in db.execute(
        "SELECT mode, name, media_type, digest, size FROM images ORDER BY mode, name"
    ).fetchall():
        try:
            target = Descriptor(str(media_type), Digest.parse(str(digest)), int(size))
        except BaleError as exc:
            problems.append(Problem(f"{mode}:{name}", exc.message))
            continue
        _check_tree(store, f"{mode}:{name}", target, problems)
    return problems


def _check_tree(store: Store, subject: str, desc: Descriptor, problems: list[Problem]) -> None:
    # Children of an index may be absent (platforms never fetched); a manifest's may not.
    if not store.content.exists(desc.digest):
        problems.append(Problem(subject, f"missing {desc.media_type} {desc.digest}"))
        return
    size = store.content.info(desc.digest).size
    if size != desc.size:
        problems.append(
            Problem(subject, f"{desc.digest} is {size} bytes, descriptor says {desc.size}")
        )
        return
    try:
        if mediatype.is_index(desc.media_type):
            index = Index.parse(store.content.read_bytes(desc.digest))
            present = [m for m in index.manifests if store.content.exists(m.digest)]
            if not present:
                problems.append(Problem(subject, f"index {desc.digest} has none of its manifests"))
            for child in present:
                _check_tree(store, subject, child, problems)
        elif mediatype.is_manifest(desc.media_type):
            manifest = Manifest.parse(store.content.read_bytes(desc.digest))
            for child in manifest.children():
                if not store.content.exists(child.digest):
                    problems.append(Problem(subject, f"missing {child.media_type} {child.digest}"))
                elif store.content.info(child.digest).size != child.size:
                    problems.append(Problem(subject, f"{child.digest} has the wrong size"))
    except BaleError as exc:
        problems.append(Problem(subject, f"{desc.digest}: {exc.message}"))
