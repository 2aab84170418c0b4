"""The cache format: ordinary OCI content.

A cache is an OCI image manifest with `artifactType` `application/vnd.bale.cache.v1`, its
config a JSON document of media type `application/vnd.bale.cache.config.v1+json`, and its
layers the layer blobs the records name (with their own media types, so they deduplicate
and cross-mount with images) plus one blob per exported cache mount
(`application/vnd.bale.cache.mount.v1.tar+zstd`). The config:

    {"version": 1,
     "records": [{"key": "sha256:…", "layer": "sha256:…" | null, "created": 1.7e9,
                  "used": 1.7e9}],
     "layers": {"sha256:…": {"mediaType": "…", "size": 123, "diffID": "sha256:…"}},
     "mounts": [{"id": "apt", "blob": "sha256:…", "size": 123, "updated": 1.7e9}]}

`key` is a step's cache key (docs/cache.md says what goes into one), `layer` the blob of the
layer it added, `created` when it first ran (an image's history time), `used` when a build
last produced or used it. Exporting into an existing cache merges: records are unioned (the
newer `used` wins), and the result keeps at most `max_records`, dropping those unused for
`max_age` first. There is no size limit that drops a cache silently: a config that cannot
be read is a warning and a cold build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from bale.builder.state import LayerRef
from bale.errors import InvalidArgument
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest

ARTIFACT_TYPE = "application/vnd.bale.cache.v1"
CONFIG_MEDIA_TYPE = "application/vnd.bale.cache.config.v1+json"
MOUNT_MEDIA_TYPE = "application/vnd.bale.cache.mount.v1.tar+zstd"
MOUNT_ID_ANNOTATION = "io.bale.cache.mount.id"
# What a config may weigh when read back; far above what 10,000 records take (~3 MB).
MAX_CONFIG = 256 << 20
# A key under which the inline cache lives in an image config (`--cache-to type=inline`).
INLINE_KEY = "io.bale.cache.v1"


@dataclass(frozen=True)
class Record:
    key: str
    layer: LayerRef | None
    created: float
    used: float


@dataclass(frozen=True)
class MountBlob:
    id: str
    blob: Descriptor
    updated: float


@dataclass(frozen=True)
class CacheConfig:
    records: tuple[Record, ...] = ()
    mounts: tuple[MountBlob, ...] = ()
    version: int = 1

    def blobs(self) -> list[Descriptor]:
        """Every blob the cache refers to, each once (the manifest's layers)."""
        seen: dict[Digest, Descriptor] = {}
        for r in self.records:
            if r.layer is not None:
                seen.setdefault(r.layer.descriptor.digest, r.layer.descriptor)
        for m in self.mounts:
            seen.setdefault(m.blob.digest, m.blob)
        return list(seen.values())

    def encode(self) -> bytes:
        layers: dict[str, Any] = {}
        records = []
        for r in sorted(self.records, key=lambda x: x.key):
            entry: dict[str, Any] = {
                "key": r.key,
                "layer": None,
                "created": r.created,
                "used": r.used,
            }
            if r.layer is not None:
                d = r.layer.descriptor
                entry["layer"] = str(d.digest)
                layers[str(d.digest)] = {
                    "mediaType": d.media_type,
                    "size": d.size,
                    "diffID": str(r.layer.diff_id),
                }
            records.append(entry)
        mounts = [
            {"id": m.id, "blob": str(m.blob.digest), "size": m.blob.size, "updated": m.updated}
            for m in sorted(self.mounts, key=lambda x: x.id)
        ]
        doc = {"version": self.version, "records": records, "layers": layers, "mounts": mounts}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @staticmethod
    def parse(data: bytes) -> CacheConfig:
        """Read a config; anything malformed is InvalidArgument (never a crash)."""
        if len(data) > MAX_CONFIG:
            raise InvalidArgument(f"cache config of {len(data)} bytes is over {MAX_CONFIG}")
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("version") != 1:
                raise ValueError("not a version 1 bale cache config")
            layers = doc.get("layers") or {}
            records = []
            for entry in doc.get("records") or []:
                layer = None
                if entry.get("layer"):
                    info = layers[entry["layer"]]
                    layer = LayerRef(
                        Descriptor(
                            str(info["mediaType"]),
                            Digest.parse(str(entry["layer"])),
                            int(info["size"]),
                        ),
                        Digest.parse(str(info["diffID"])),
                    )
                records.append(
                    Record(str(entry["key"]), layer, float(entry["created"]), float(entry["used"]))
                )
            mounts = [
                MountBlob(
                    str(m["id"]),
                    Descriptor(
                        MOUNT_MEDIA_TYPE,
                        Digest.parse(str(m["blob"])),
                        int(m["size"]),
                        annotations=((MOUNT_ID_ANNOTATION, str(m["id"])),),
                    ),
                    float(m["updated"]),
                )
                for m in doc.get("mounts") or []
            ]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise InvalidArgument(f"unreadable cache config: {exc}") from None
        except InvalidArgument as exc:
            raise InvalidArgument(f"unreadable cache config: {exc.message}") from None
        return CacheConfig(tuple(records), tuple(mounts))


def merge(
    old: CacheConfig | None,
    new: CacheConfig,
    *,
    now: float,
    max_age: float,
    max_records: int,
) -> CacheConfig:
    """The union of two caches (the newer use of a key wins), aged and bounded."""
    by_key: dict[str, Record] = {}
    for r in [*(old.records if old else ()), *new.records]:
        known = by_key.get(r.key)
        if known is None or r.used > known.used:
            by_key[r.key] = r
        elif known.layer == r.layer:
            by_key[r.key] = replace(known, used=max(known.used, r.used))
    fresh = [r for r in by_key.values() if now - r.used <= max_age]
    fresh.sort(key=lambda r: r.used, reverse=True)
    mounts: dict[str, MountBlob] = {}
    for m in [*(old.mounts if old else ()), *new.mounts]:
        if m.id not in mounts or m.updated >= mounts[m.id].updated:
            mounts[m.id] = m
    kept_mounts = [m for m in mounts.values() if now - m.updated <= max_age]
    return CacheConfig(tuple(fresh[:max_records]), tuple(kept_mounts))
