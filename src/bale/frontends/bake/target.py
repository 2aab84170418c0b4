"""A bake target while it is being resolved: decoding, merging and normalizing, as buildx's
`Target` does. `plan.py` freezes the result into plain values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bale.frontends.bake import buildflags as bf
from bale.frontends.bake import values as V

# Every attribute a target block accepts (besides `name` and `matrix`), in buildx's order.
ATTRIBUTES = (
    "description",
    "inherits",
    "annotations",
    "attest",
    "context",
    "contexts",
    "dockerfile",
    "dockerfile-inline",
    "args",
    "labels",
    "tags",
    "cache-from",
    "cache-to",
    "target",
    "secret",
    "ssh",
    "platforms",
    "output",
    "pull",
    "no-cache",
    "network",
    "no-cache-filter",
    "shm-size",
    "ulimits",
    "resources",
    "call",
    "entitlements",
    "extra-hosts",
    "policy",
)

STRING_ATTRS = {
    "context",
    "dockerfile",
    "dockerfile-inline",
    "target",
    "network",
    "shm-size",
    "call",
}
LIST_ATTRS = {
    "inherits",
    "annotations",
    "tags",
    "platforms",
    "no-cache-filter",
    "ulimits",
    "entitlements",
}
MAP_ATTRS = {"args", "labels", "extra-hosts"}
BOOL_ATTRS = {"pull", "no-cache"}

RESOURCE_KEYS = (
    "memory",
    "memory-swap",
    "cpu-shares",
    "cpu-period",
    "cpu-quota",
    "cpuset-cpus",
    "cpuset-mems",
)
RESOURCE_INTS = {"cpu-shares", "cpu-period", "cpu-quota"}


class DecodeError(Exception):
    """A value that does not fit its attribute ("string required")."""


@dataclass
class Group:
    name: str
    description: str = ""
    targets: list[str] | None = None


@dataclass
class Target:
    name: str
    description: str = ""
    inherits: list[str] | None = None
    annotations: list[str] | None = None
    attest: list[bf.Attest] | None = None
    context: str | None = None
    contexts: dict[str, str] | None = None
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: dict[str, str | None] | None = None
    labels: dict[str, str | None] | None = None
    tags: list[str] | None = None
    cache_from: list[bf.CacheEntry] | None = None
    cache_to: list[bf.CacheEntry] | None = None
    target: str | None = None
    secret: list[bf.Secret] | None = None
    ssh: list[bf.SSH] | None = None
    platforms: list[str] | None = None
    output: list[bf.Export] | None = None
    pull: bool | None = None
    no_cache: bool | None = None
    network: str | None = None
    no_cache_filter: list[str] | None = None
    shm_size: str | None = None
    ulimits: list[str] | None = None
    resources: dict[str, Any] | None = None
    call: str | None = None
    entitlements: list[str] | None = None
    extra_hosts: dict[str, str | None] | None = None
    policy: list[dict[str, str]] | None = None
    linked: bool = False
    # Where a relative context resolves from (BUILDX_BAKE_FILE_RELATIVE_PATHS=1).
    context_base: str | None = None
    default_context_base: str | None = None
    contexts_base: dict[str, str] = field(default_factory=dict)
    # Source ranges of the attributes that set values, for located errors.
    ranges: dict[str, Any] = field(default_factory=dict)

    def clone(self) -> Target:
        return copy.deepcopy(self)

    def set(self, attr: str, value: Any) -> None:
        setattr(self, attr.replace("-", "_"), value)

    def get(self, attr: str) -> Any:
        return getattr(self, attr.replace("-", "_"))

    def merge(self, t2: Target) -> None:
        """buildx Target.Merge: t2's set attributes override or extend self's."""
        if t2.default_context_base is not None:
            self.default_context_base = t2.default_context_base
        if t2.context is not None:
            self.context = t2.context
            self.context_base = t2.context_base
        if t2.dockerfile is not None:
            self.dockerfile = t2.dockerfile
        if t2.dockerfile_inline is not None:
            self.dockerfile_inline = t2.dockerfile_inline
        for attr in ("args", "labels", "extra_hosts"):
            other = getattr(t2, attr)
            for k, v in (other or {}).items():
                if v is None:
                    continue  # null means "the Dockerfile's default"
                mine = getattr(self, attr)
                if mine is None:
                    mine = {}
                    setattr(self, attr, mine)
                mine[k] = v
        for k, v in (t2.contexts or {}).items():
            if self.contexts is None:
                self.contexts = {}
            self.contexts[k] = v
            if k in t2.contexts_base:
                self.contexts_base[k] = t2.contexts_base[k]
            else:
                self.contexts_base.pop(k, None)
        for attr in (
            "tags",
            "target",
            "call",
            "platforms",
            "cache_to",
            "output",
            "pull",
            "no_cache",
            "network",
            "shm_size",
        ):
            v = getattr(t2, attr)
            if v is not None:
                setattr(self, attr, copy.deepcopy(v))
        for attr in ("annotations", "policy", "no_cache_filter", "ulimits", "entitlements"):
            v = getattr(t2, attr)
            if v is not None:
                setattr(self, attr, (getattr(self, attr) or []) + copy.deepcopy(v))
        if t2.attest is not None:
            self.attest = bf.merge_list(self.attest, copy.deepcopy(t2.attest), bf.normalize_attests)
        if t2.secret is not None:
            self.secret = bf.merge_list(self.secret, copy.deepcopy(t2.secret), bf.normalize_secrets)
        if t2.ssh is not None:
            self.ssh = bf.merge_list(self.ssh, copy.deepcopy(t2.ssh), bf.normalize_ssh)
        if t2.cache_from is not None:
            self.cache_from = bf.merge_list(
                self.cache_from, copy.deepcopy(t2.cache_from), bf.normalize_caches
            )
        if t2.resources is not None:
            self.resources = {**(self.resources or {}), **t2.resources}
        if t2.description:
            self.description = t2.description
        self.ranges.update(t2.ranges)
        self.inherits = (
            (self.inherits or []) + list(t2.inherits or [])
            if (self.inherits or t2.inherits)
            else None
        )

    def normalize(self) -> None:
        self.annotations = _dedup_str(self.annotations)
        self.attest = bf.normalize_attests(self.attest)
        self.tags = _dedup_str(self.tags)
        self.secret = bf.normalize_secrets(self.secret)
        self.ssh = bf.normalize_ssh(self.ssh)
        self.platforms = _dedup_str(self.platforms)
        self.cache_from = bf.normalize_caches(self.cache_from)
        self.cache_to = bf.normalize_caches(self.cache_to)
        self.output = bf.normalize_exports(self.output)
        self.no_cache_filter = _dedup_str(self.no_cache_filter)
        self.ulimits = _dedup_str(self.ulimits)
        if self.network == "host":
            self.entitlements = (self.entitlements or []) + ["network.host"]
        self.entitlements = _dedup_str(self.entitlements)
        if self.contexts:
            self.contexts = {k: v for k, v in self.contexts.items() if v != ""}
        if not self.contexts:
            self.contexts = None


def _dedup_str(items: list[str] | None) -> list[str] | None:
    """removeDupesStr: drop duplicates and empty strings, keeping first occurrences."""
    if items is None:
        return None
    seen: set[str] = set()
    out = []
    for v in items:
        if v in seen or v == "":
            continue
        seen.add(v)
        out.append(v)
    return out


# Decoding HCL values into attributes ----------------------------------------------------


def _string(value: Any) -> str:
    if isinstance(value, (list, dict)):
        raise DecodeError("string required")
    try:
        return V.to_string(value)
    except V.ConversionError as exc:
        raise DecodeError(str(exc)) from None


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise DecodeError("list of string required")
    out = []
    for i, item in enumerate(value):
        if item is None:
            raise DecodeError(f"element {i}: null value is not allowed")
        try:
            out.append(_string(item))
        except DecodeError as exc:
            raise DecodeError(f"element {i}: {exc}") from None
    return out


def _string_map(value: Any, allow_null: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError("map of string required")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None:
            if allow_null:
                out[k] = None
            continue
        try:
            out[k] = _string(v)
        except DecodeError as exc:
            raise DecodeError(f'element "{k}": {exc}') from None
    return out


def _elements(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"list of {what} required")
    # buildx skips empty strings in composable lists (an unset variable yields no entry).
    return [v for v in value if v is not None and v != ""]


def decode(attr: str, value: Any) -> Any:
    """An HCL value as the typed attribute; None means "not set"."""
    if value is None:
        return None
    try:
        if attr == "description":
            return _string(value)
        if attr in STRING_ATTRS:
            return _string(value)
        if attr in LIST_ATTRS:
            return _strings(value)
        if attr in MAP_ATTRS:
            return _string_map(value, allow_null=True)
        if attr == "contexts":
            return _string_map(value, allow_null=False)
        if attr in BOOL_ATTRS:
            if isinstance(value, (list, dict)):
                raise DecodeError("bool required")
            return V.to_bool(value)
        if attr in ("cache-from", "cache-to"):
            entries: list[bf.CacheEntry] = []
            for v in _elements(value, "map of string"):
                entries.extend(bf.CacheEntry.from_value(v))
            return entries
        if attr == "output":
            return [bf.Export.from_value(v) for v in _elements(value, "map of string")]
        if attr == "secret":
            return [bf.Secret.from_value(v) for v in _elements(value, "object")]
        if attr == "ssh":
            return [bf.SSH.from_value(v) for v in _elements(value, "object")]
        if attr == "attest":
            return [bf.Attest.from_value(v) for v in _elements(value, "map of string")]
        if attr == "resources":
            return decode_resources(value)
        if attr == "policy":
            return [decode_policy(v) for v in _elements(value, "map of string")]
    except (V.ConversionError, bf.FlagError) as exc:
        raise DecodeError(str(exc)) from None
    raise DecodeError(f'unknown attribute "{attr}"')


def decode_resources(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError("object required")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k not in RESOURCE_KEYS:
            raise DecodeError(f'unsupported attribute "{k}"')
        if v is None:
            continue
        if k in RESOURCE_INTS:
            n = V.to_number(v)
            if n != n.to_integral_value():
                raise DecodeError(f'attribute "{k}": a whole number is required')
            out[k] = int(n)
        else:
            out[k] = _string(v)
    return out


def decode_policy(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        fields = bf.csv_fields(value)
    elif isinstance(value, dict):
        fields = [f"{k}={V.to_string(v)}" for k, v in value.items() if v is not None and v != ""]
    else:
        raise DecodeError("map of string required")
    out: dict[str, str] = {}
    for f in fields:
        key, sep, v = f.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("filename", "reset", "disabled", "strict", "log-level"):
            raise DecodeError(f"invalid value {f}")
        out[key] = v
    return out


def to_value(t: Target, attr: str) -> Any:
    """An attribute as the HCL value other expressions see (`target.foo.tags`)."""
    if attr == "name":
        return t.name
    v = t.get(attr)
    if attr == "description":
        return v
    if v is None:
        return None
    if attr in ("cache-from", "cache-to", "output", "secret", "ssh", "attest"):
        return [e.to_value() for e in v]
    if attr == "resources":
        return V.obj({k: (V.to_number(str(x)) if isinstance(x, int) else x) for k, x in v.items()})
    if attr == "policy":
        return [V.obj(dict(p)) for p in v]
    if isinstance(v, dict):
        return V.obj(dict(v))
    if isinstance(v, list):
        return list(v)
    return v
