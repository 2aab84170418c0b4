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
    index: Any = None
    history = History(store)
    ids: list[str] = []
    # Every blob streams into the store (verified, leased); documents are read back with a
    # size limit, so an archive of any size costs no memory. A failure removes what came.
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
                store.ingest(stream, expected=digest, size=member.size, lease=lease)  # type: ignore[arg-type]
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise InvalidArgument(f"{path}: no index.json listing records")
        for desc in index["manifests"]:
            record_id = str(desc.get("annotations", {}).get(REFERENCE_ANNOTATION, ""))
            manifest = json.loads(_document(store, desc["digest"]))
            text = _document(store, manifest["config"]["digest"]).decode()
            record = json.loads(text)
            if not _ID.fullmatch(record_id) or record.get("id") != record_id:
                raise InvalidArgument(f"{path}: record {record_id!r} has a bad reference")
            check_record(record)
            blobs = [Digest.parse(s["log"]["digest"]) for s in record["steps"] if "log" in s]
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


def _document(store: Store, digest: object) -> bytes:
    return store.content.read_bytes(Digest.parse(str(digest)), limit=_MAX_DOCUMENT)


_STEP_FIELDS: dict[str, type | tuple[type, ...]] = {
    "n": int,
    "vertex": str,
    "name": str,
    "platform": str,
    "status": str,
    "started": (int, float, type(None)),
    "completed": (int, float, type(None)),
    "inputs": list,
}


def check_record(record: Any) -> None:
    """An imported record has the shape `bale history` reads (it is untrusted input)."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise InvalidArgument(f"build record: {what}")

    need(isinstance(record, dict), "not an object")
    top: list[tuple[str, type | tuple[type, ...]]] = [
        ("name", str),
        ("status", str),
        ("created", (int, float)),
        ("completed", (int, float)),
        ("steps", list),
        ("request", dict),
        ("warnings", list),
        ("results", dict),
    ]
    for key, kind in top:
        need(isinstance(record.get(key), kind), f"{key} is missing or of the wrong type")
    need(record.get("error") is None or isinstance(record["error"], dict), "bad error")
    for step in record["steps"]:
        need(isinstance(step, dict), "a step is not an object")
        for key, kind in _STEP_FIELDS.items():
            need(isinstance(step.get(key), kind), f"step field {key} is missing or wrong")
        log = step.get("log")
        if log is not None:
            need(
                isinstance(log, dict)
                and isinstance(log.get("digest"), str)
                and isinstance(log.get("size"), int),
                "bad step log",
            )


def _read(stream: IO[bytes], size: int) -> bytes:
    if size > _MAX_DOCUMENT:
        raise InvalidArgument(f"a document of {size} bytes is too large")
    return stream.read(size)
