"""Build records to and from one portable file, shaped like buildx's `.dockerbuild` bundle:
a gzipped OCI image layout whose index holds one manifest per record (annotated with
`vnd.buildkit.history.reference`), the record JSON as its config and the step logs as its
layers. The record itself is bale's (its config media type says so), not BuildKit's
protobuf record, so Docker Desktop does not read it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO

from bale.errors import BaleError, InvalidArgument
from bale.oci.digest import Digest
from bale.store.history import LOG_MEDIA_TYPE, History, HistoryEntry
from bale.store.local import Store

RECORD_MEDIA_TYPE = "application/vnd.bale.historyrecord.v0+json"
REFERENCE_ANNOTATION = "vnd.buildkit.history.reference"
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_MAX_DOCUMENT = 64 << 20
_MAX_MEMBERS = 100_000
_ID = re.compile(r"[a-z0-9]{1,64}")


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def export_records(store: Store, entries: Sequence[HistoryEntry], out: BinaryIO) -> None:
    written: set[str] = set()
    manifests = []
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, "oci-layout", _canonical({"imageLayoutVersion": "1.0.0"}))

        def blob(data: bytes) -> dict[str, Any]:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if digest not in written:
                written.add(digest)
                _add(tar, f"blobs/sha256/{digest[7:]}", data)
            return {"digest": digest, "size": len(data)}

        for entry in entries:
            record = json.loads(entry.record)
            layers = []
            for step in record.get("steps", []):
                log = step.get("log")
                if not log:
                    continue
                digest = Digest.parse(log["digest"])
                if str(digest) not in written:
                    written.add(str(digest))
                    info = tarfile.TarInfo(f"blobs/sha256/{digest.hex}")
                    info.size = store.content.info(digest).size
                    info.mode = 0o644
                    with store.content.open(digest) as data:
                        tar.addfile(info, data)
                layers.append(
                    {"mediaType": LOG_MEDIA_TYPE, "digest": str(digest), "size": int(log["size"])}
                )
            config = blob(entry.record.encode())
            manifest = {
                "schemaVersion": 2,
                "mediaType": _MANIFEST,
                "config": {"mediaType": RECORD_MEDIA_TYPE, **config},
                "layers": list({la["digest"]: la for la in layers}.values()),
            }
            desc = blob(_canonical(manifest))
            manifests.append(
                {"mediaType": _MANIFEST, **desc, "annotations": {REFERENCE_ANNOTATION: entry.id}}
            )
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }
        _add(tar, "index.json", _canonical(index))


def import_records(store: Store, path: Path) -> list[str]:
    """Load every record of an exported file; returns their ids. Every blob is verified
    against its digest; a record whose blobs are missing is refused."""
    try:
        return _import(store, path)
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InvalidArgument(f"{path}: not a build record archive: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"{path}: damaged build record archive: {exc}") from None


def _import(store: Store, path: Path) -> list[str]:
    documents: dict[str, bytes] = {}
    index: Any = None
    history = History(store)
    ids: list[str] = []
    with store.lease() as lease, tarfile.open(path, mode="r:*") as tar:
        for count, member in enumerate(tar):
            if count > _MAX_MEMBERS:
                raise InvalidArgument(f"{path}: too many entries")
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            stream = tar.extractfile(member)
            if stream is None:
                continue
            if name == "index.json":
                index = json.loads(_read(stream, member.size))
            elif m := re.fullmatch(r"blobs/sha256/([0-9a-f]{64})", name):
                digest = Digest("sha256", m.group(1))
                if member.size <= _MAX_DOCUMENT:
                    data = _read(stream, member.size)
                    if hashlib.sha256(data).hexdigest() != digest.hex:
                        raise InvalidArgument(f"{path}: {name} does not match its digest")
                    documents[str(digest)] = data
                    store.put_blob(data, lease)
                else:
                    store.ingest(stream, expected=digest, size=member.size, lease=lease)  # type: ignore[arg-type]
        if not isinstance(index, dict):
            raise InvalidArgument(f"{path}: no index.json")
        for desc in index.get("manifests", []):
            record_id = str(desc.get("annotations", {}).get(REFERENCE_ANNOTATION, ""))
            manifest = json.loads(documents[str(Digest.parse(desc["digest"]))])
            text = documents[str(Digest.parse(manifest["config"]["digest"]))].decode()
            record = json.loads(text)
            if not _ID.fullmatch(record_id) or record.get("id") != record_id:
                raise InvalidArgument(f"{path}: record {record_id!r} has a bad reference")
            blobs = [Digest.parse(layer["digest"]) for layer in manifest.get("layers", [])]
            for digest in blobs:
                if not store.content.exists(digest):
                    raise InvalidArgument(f"{path}: record {record_id} lacks log {digest}")
            entry = HistoryEntry(
                record_id,
                float(record["created"]),
                float(record["completed"]),
                str(record["status"]),
                str(record["name"]),
                text,
            )
            try:
                history.put(entry, blobs, replace=True)
            except BaleError as exc:
                raise exc.with_context(f"importing {record_id}") from None
            ids.append(record_id)
    return ids


def _read(stream: IO[bytes], size: int) -> bytes:
    if size > _MAX_DOCUMENT:
        raise InvalidArgument(f"a document of {size} bytes is too large")
    return stream.read(size)
