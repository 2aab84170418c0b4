"""`--cache-to` and `--cache-from` as buildx spells them.

    type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd|uncompressed][,ignore-error=true]
    type=local,dest=DIR | src=DIR [,tag=TAG][,mode=...]
    type=inline
    REF                                   (a bare reference: type=registry)

bale's own keys: `cache-mounts=ID;ID|all` exports RUN --mount=type=cache contents,
`max-age=DURATION` (e.g. 168h) and `max-records=N` bound what a merged cache keeps.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Literal

from bale.errors import InvalidArgument
from bale.oci.reference import Reference

Kind = Literal["registry", "local", "inline"]
DEFAULT_MAX_AGE = 30 * 24 * 3600.0  # records unused for 30 days age out of a merged cache
DEFAULT_MAX_RECORDS = 10_000

_COMMON = {"type", "mode", "ignore-error", "cache-mounts", "max-age", "max-records"}
_KEYS: dict[str, set[str]] = {
    "registry": _COMMON
    | {
        "ref",
        "compression",
        "compression-level",
        "force-compression",
        "oci-mediatypes",
        "image-manifest",
    },
    "local": _COMMON
    | {
        "dest",
        "src",
        "tag",
        "compression",
        "compression-level",
        "force-compression",
        "oci-mediatypes",
        "image-manifest",
        "digest",
    },
    "inline": {"type", "mode"},
}
# Accepted for buildx compatibility, with no effect (stated in docs/cache.md).
_IGNORED = {"oci-mediatypes", "image-manifest", "compression-level", "force-compression"}


@dataclass(frozen=True)
class CacheSpec:
    kind: Kind
    ref: str = ""  # registry
    path: str = ""  # local: dest (export) or src (import)
    tag: str = "latest"  # local
    mode: Literal["min", "max"] = "min"
    compression: str = ""  # "": as the layers are
    ignore_error: bool = False
    cache_mounts: tuple[str, ...] = ()  # ids, or ("*",) for every cache mount
    max_age: float = DEFAULT_MAX_AGE
    max_records: int = DEFAULT_MAX_RECORDS
    text: str = ""  # as given, for messages

    def describe(self) -> str:
        if self.kind == "registry":
            return f"registry {self.ref}"
        if self.kind == "local":
            return f"local {self.path}"
        return "inline"

    def exports_mount(self, mount_id: str) -> bool:
        return "*" in self.cache_mounts or mount_id in self.cache_mounts


def parse_cache_spec(text: str, flag: str) -> CacheSpec:
    """One `--cache-to`/`--cache-from` value; errors name the flag and the bad part."""
    export = flag == "--cache-to"
    if "=" not in text:
        if not text:
            raise InvalidArgument(f"{flag}: empty value")
        return CacheSpec("registry", ref=_reference(text, flag), text=text)
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise InvalidArgument(f"invalid {flag} value {text!r}") from None
    attrs: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid {flag} field {item!r}: expected key=value")
        attrs[key.strip().lower()] = value.strip()
    kind = attrs.get("type", "registry" if "ref" in attrs else "")
    if kind not in _KEYS:
        raise InvalidArgument(
            f"{flag}: unsupported cache type {kind!r}" if kind else f"{flag}: no type in {text!r}",
            hint="use type=registry,ref=REF, type=local,dest=DIR|src=DIR or type=inline",
        )
    unknown = sorted(set(attrs) - _KEYS[kind])
    if unknown:
        raise InvalidArgument(
            f"{flag}: unknown attribute {unknown[0]!r} for type={kind}",
            hint="attributes: " + ", ".join(sorted(_KEYS[kind] - {"type"})),
        )
    mode = attrs.get("mode", "min")
    if mode not in ("min", "max"):
        raise InvalidArgument(f"{flag}: invalid mode {mode!r}", hint="use mode=min or mode=max")
    if kind == "inline" and mode == "max":
        raise InvalidArgument(f"{flag}: type=inline only supports mode=min")
    compression = attrs.get("compression", "")
    if compression not in ("", "gzip", "zstd", "uncompressed"):
        raise InvalidArgument(
            f"{flag}: unsupported compression {compression!r}",
            hint="use gzip, zstd or uncompressed",
        )
    spec = CacheSpec(
        kind=kind,  # type: ignore[arg-type]  # checked against _KEYS above
        mode=mode,  # type: ignore[arg-type]
        compression=compression,
        ignore_error=_bool(attrs.get("ignore-error", "false"), flag, "ignore-error"),
        cache_mounts=_mounts(attrs.get("cache-mounts", "")),
        max_age=_duration(attrs["max-age"], flag) if "max-age" in attrs else DEFAULT_MAX_AGE,
        max_records=_count(attrs.get("max-records", str(DEFAULT_MAX_RECORDS)), flag),
        text=text,
    )
    if kind == "registry":
        if not attrs.get("ref"):
            raise InvalidArgument(f"{flag}: type=registry needs ref=REF")
        return _replace(spec, ref=_reference(attrs["ref"], flag))
    if kind == "local":
        key = "dest" if export else "src"
        if not attrs.get(key):
            raise InvalidArgument(f"{flag}: type=local needs {key}=DIR")
        return _replace(spec, path=attrs[key], tag=attrs.get("tag") or "latest")
    return spec


def _replace(spec: CacheSpec, **changes: object) -> CacheSpec:
    from dataclasses import replace

    return replace(spec, **changes)  # type: ignore[arg-type]


def _reference(text: str, flag: str) -> str:
    try:
        return str(Reference.parse(text))
    except InvalidArgument as exc:
        raise InvalidArgument(f"{flag}: invalid reference {text!r}: {exc.message}") from None


def _bool(value: str, flag: str, key: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", ""):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidArgument(f"{flag}: invalid value {value!r} for {key}", hint="use true or false")


def _mounts(value: str) -> tuple[str, ...]:
    if not value:
        return ()
    if value in ("all", "*", "true"):
        return ("*",)
    return tuple(part for part in value.split(";") if part)


def _duration(value: str, flag: str) -> float:
    match = re.fullmatch(r"(\d{1,9})(s|m|h|d)?", value)
    if match is None:
        raise InvalidArgument(f"{flag}: invalid max-age {value!r}", hint="use e.g. 168h or 7d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]


def _count(value: str, flag: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= 10_000_000:
        raise InvalidArgument(f"{flag}: invalid max-records {value!r}")
    return int(value)


def ignored_keys() -> set[str]:
    return set(_IGNORED)
