"""buildx's composable attributes: cache entries, exports, secrets, SSH keys, attestations.

Each parses from the CSV flag syntax and from HCL objects, prints as buildx's `String()`,
serializes as its `--print` JSON, and dedups exactly as buildx's Normalize does.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from bale.frontends.bake import values as V


class FlagError(Exception):
    pass


def csv_fields(text: str) -> list[str]:
    """One CSV record, strict as Go's encoding/csv (bare quotes are an error)."""
    fields: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise FlagError(
                        f'parse error: extraneous or missing " in quoted-field in {text!r}'
                    )
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            if i < n and text[i] != ",":
                raise FlagError(f'parse error: extraneous or missing " in quoted-field in {text!r}')
            fields.append("".join(buf))
        else:
            j = text.find(",", i)
            end = n if j < 0 else j
            chunk = text[i:end]
            if '"' in chunk:
                raise FlagError(f'parse error: bare " in non-quoted-field in {text!r}')
            fields.append(chunk)
            i = end
        if i >= n:
            return fields
        i += 1  # the comma


def csv_pair(key: str, value: str) -> str:
    pair = f"{key}={value}"
    if "," in pair or '"' in pair:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow([pair])
        return buf.getvalue()
    return pair


def _attrs_text(parts: list[str], attrs: dict[str, str]) -> str:
    return ",".join(parts + [csv_pair(k, attrs[k]) for k in sorted(attrs)])


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FlagError(f"map of string required for {what}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        try:
            out[k] = V.to_string(v)
        except V.ConversionError:
            raise FlagError(f'attribute "{k}": string required') from None
    return out


@dataclass
class CacheEntry:
    type: str
    attrs: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(text: str) -> CacheEntry:
        fields = csv_fields(text)
        if len(fields) == 1 and "=" not in fields[0]:
            return CacheEntry("registry", {"ref": fields[0]})
        entry = CacheEntry("")
        for f in fields:
            key, sep, value = f.partition("=")
            if not sep:
                raise FlagError(f"invalid value {f}")
            if key.lower() == "type":
                entry.type = value
            else:
                entry.attrs[key.lower()] = value
        if not entry.type:
            raise FlagError(f'type required for "{text}"')
        return entry

    @staticmethod
    def from_value(value: Any) -> list[CacheEntry]:
        if isinstance(value, str):
            return parse_cache_entries([value])
        m = _string_map(value, "cache entry")
        kind = m.pop("type", "")
        if not kind:
            raise FlagError(f'type required for "{V.json_encode(value)}"')
        return [CacheEntry(kind, m)]

    def string(self) -> str:
        if self.type == "registry" and list(self.attrs) == ["ref"]:
            return self.attrs["ref"]
        return _attrs_text([f"type={self.type}"] if self.type else [], self.attrs)

    def to_json(self) -> dict[str, Any]:
        return dict(sorted({**self.attrs, "type": self.type}.items()))

    def to_value(self) -> dict[str, Any]:
        return V.obj({**self.attrs, "type": self.type})


def parse_cache_entries(items: list[str]) -> list[CacheEntry]:
    out: list[CacheEntry] = []
    for item in items:
        if item == "":
            continue
        if "=" not in item:
            out.extend(CacheEntry.parse(f) for f in csv_fields(item))
        else:
            out.append(CacheEntry.parse(item))
    return out


@dataclass
class Export:
    type: str
    attrs: dict[str, str] = field(default_factory=dict)
    dest: str = ""

    @staticmethod
    def parse(text: str) -> Export:
        fields = csv_fields(text)
        if len(fields) == 1 and fields[0] == text and not text.startswith("type="):
            return Export("tar", {}, text) if text == "-" else Export("local", {}, text)
        entry = Export("")
        for f in fields:
            key, sep, value = f.partition("=")
            if not sep:
                raise FlagError(f"invalid value {f}")
            key = key.strip().lower()
            if key == "type":
                entry.type = value
            elif key == "dest":
                entry.dest = value
            else:
                entry.attrs[key] = value
        if not entry.type:
            raise FlagError("type is required for output")
        return entry

    @staticmethod
    def from_value(value: Any) -> Export:
        if isinstance(value, str):
            return Export.parse(value)
        m = _string_map(value, "output")
        entry = Export(m.pop("type", ""), {}, m.pop("dest", ""))
        entry.attrs = m
        if not entry.type:
            raise FlagError("type is required for output")
        return entry

    def string(self) -> str:
        head = [f"type={self.type}"] if self.type else []
        if self.dest:
            head.append(csv_pair("dest", self.dest))
        return _attrs_text(head, self.attrs)

    def to_json(self) -> dict[str, Any]:
        m: dict[str, Any] = {**self.attrs, "type": self.type}
        if self.dest:
            m["dest"] = self.dest
        return dict(sorted(m.items()))

    def to_value(self) -> dict[str, Any]:
        return V.obj({**self.attrs, "type": self.type, "dest": self.dest})


@dataclass
class Secret:
    id: str = ""
    src: str = ""
    env: str = ""

    @staticmethod
    def parse(text: str) -> Secret:
        s = Secret()
        kind = ""
        for f in csv_fields(text):
            key, sep, value = f.partition("=")
            if not sep:
                raise FlagError(f"invalid field '{f}' must be a key=value pair")
            key = key.lower()
            if key == "type":
                if value not in ("file", "env"):
                    raise FlagError(f'unsupported secret type "{value}"')
                kind = value
            elif key == "id":
                s.id = value
            elif key in ("source", "src"):
                s.src = value
            elif key == "env":
                s.env = value
            else:
                raise FlagError(f"unexpected key '{key}' in '{f}'")
        if kind == "env" and not s.env:
            s.env, s.src = s.src, ""
        return s

    @staticmethod
    def from_value(value: Any) -> Secret:
        if isinstance(value, str):
            return Secret.parse(value)
        m = _string_map(value, "secret")
        unknown = set(m) - {"id", "src", "env", "type"}
        if unknown:
            raise FlagError(f'unsupported attribute "{sorted(unknown)[0]}" in secret')
        s = Secret(m.get("id", ""), m.get("src", ""), m.get("env", ""))
        if m.get("type") == "env" and not s.env:
            s.env, s.src = s.src, ""
        return s

    def string(self) -> str:
        parts = [
            csv_pair(k, v) for k, v in (("id", self.id), ("src", self.src), ("env", self.env)) if v
        ]
        return ",".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("id", self.id), ("src", self.src), ("env", self.env)) if v}

    def to_value(self) -> dict[str, Any]:
        return V.obj({"id": self.id, "src": self.src, "env": self.env})


@dataclass
class SSH:
    id: str
    paths: list[str] = field(default_factory=list)

    @staticmethod
    def parse(text: str) -> SSH:
        key, sep, rest = text.partition("=")
        return SSH(key, rest.split(",") if sep else [])

    @staticmethod
    def from_value(value: Any) -> SSH:
        if isinstance(value, str):
            return SSH.parse(value)
        if not isinstance(value, dict):
            raise FlagError("object required for ssh")
        paths = value.get("paths") or []
        if not isinstance(paths, list):
            raise FlagError('attribute "paths": list of string required')
        return SSH(V.to_string(value.get("id") or ""), [V.to_string(p) for p in paths])

    def sort_key(self) -> tuple[str, list[str]]:
        return (self.id, self.paths)

    def string(self) -> str:
        if not self.paths:
            return self.id
        return csv_pair(self.id, ",".join(self.paths))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        if self.paths:
            out["paths"] = list(self.paths)
        return out

    def to_value(self) -> dict[str, Any]:
        return V.obj({"id": self.id, "paths": list(self.paths)})


@dataclass
class Attest:
    type: str
    disabled: bool = False
    attrs: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(text: str) -> Attest:
        a = Attest("")
        for f in csv_fields(text):
            key, sep, value = f.partition("=")
            if not sep:
                raise FlagError(f"invalid value {f}")
            k = key.strip().lower()
            if k == "type":
                a.type = value
            elif k == "disabled":
                a.disabled = _parse_bool(value, f)
            else:
                a.attrs[key] = value
        if not a.type:
            raise FlagError("attestation type not specified")
        return a

    @staticmethod
    def from_value(value: Any) -> Attest:
        if isinstance(value, str):
            return Attest.parse(value)
        m = _string_map(value, "attest")
        a = Attest(m.pop("type", ""))
        if "disabled" in m:
            a.disabled = _parse_bool(m.pop("disabled"), "disabled")
        a.attrs = m
        return a

    def string(self) -> str:
        head = [f"type={self.type}"] if self.type else []
        if self.disabled:
            head.append("disabled=true")
        return _attrs_text(head, self.attrs)

    def to_json(self) -> dict[str, Any]:
        m: dict[str, Any] = {**self.attrs, "type": self.type}
        if self.disabled:
            m["disabled"] = True
        return dict(sorted(m.items()))

    def to_value(self) -> dict[str, Any]:
        m: dict[str, Any] = {**self.attrs, "type": self.type}
        if self.disabled:
            m["disabled"] = "true"
        return V.obj(m)


def _parse_bool(value: str, what: str) -> bool:
    lowered = value.strip()
    if lowered in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if lowered in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise FlagError(f'invalid value {what}: strconv.ParseBool: parsing "{value}": invalid syntax')


parse_bool = _parse_bool


def canonicalize_attest(kind: str, text: str) -> str:
    if text == "":
        return ""
    try:
        return f"type={kind},disabled={'false' if _parse_bool(text, text) else 'true'}"
    except FlagError:
        return f"type={kind},{text}"


# Dedup rules, exactly as buildx's Normalize (order effects included) -------------------


def remove_dupes(items: list[Any]) -> list[Any]:
    """buildflags.removeDupes: a duplicate is swapped with the last element and dropped."""
    s = list(items)
    i = len(s) - 2
    while i >= 0:
        elem = s[i]
        for j in range(i + 1, len(s)):
            if elem == s[j]:
                s[j], s[-1] = s[-1], s[j]
                s.pop()
                break
        i -= 1
    return s


def dedup_by(items: list[Any], key: Any) -> list[Any]:
    """Later entries with the same key replace earlier ones in place (secrets, ssh, attests)."""
    out: list[Any] = []
    index: dict[Any, int] = {}
    for item in items:
        k = key(item)
        if k in index:
            out[index[k]] = item
        else:
            index[k] = len(out)
            out.append(item)
    return out


def normalize_caches(items: list[CacheEntry] | None) -> list[CacheEntry] | None:
    return remove_dupes(items) if items else None


def normalize_exports(items: list[Export] | None) -> list[Export] | None:
    return remove_dupes(items) if items else None


def normalize_secrets(items: list[Secret] | None) -> list[Secret] | None:
    return dedup_by(items, lambda s: s.id) if items else None


def normalize_ssh(items: list[SSH] | None) -> list[SSH] | None:
    return dedup_by(items, lambda s: s.id) if items else None


def normalize_attests(items: list[Attest] | None) -> list[Attest] | None:
    return dedup_by(items, lambda a: a.type) if items else None


def merge_list(a: list[Any] | None, b: list[Any] | None, normalize: Any) -> list[Any] | None:
    """buildx's X.Merge: concatenate then normalize."""
    merged = a if b is None else b if a is None else a + b
    result: list[Any] | None = normalize(merged)
    return result
