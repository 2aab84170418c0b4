"""`--set pattern.key[.subkey]=value`: buildx's override parsing and application."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from bale.errors import BakeError
from bale.frontends.bake import buildflags as bf
from bale.frontends.bake.target import RESOURCE_INTS, RESOURCE_KEYS, Target

LIST_KEYS = {
    "output",
    "cache-to",
    "cache-from",
    "tags",
    "platform",
    "secrets",
    "ssh",
    "attest",
    "entitlements",
    "network",
    "annotations",
    "policy",
}
KNOWN_KEYS = LIST_KEYS | {
    "context",
    "dockerfile",
    "args",
    "contexts",
    "labels",
    "target",
    "call",
    "secret",
    "no-cache",
    "no-cache-filter",
    "shm-size",
    "ulimits",
    "resources",
    "pull",
    "push",
    "load",
    "extra-hosts",
}


@dataclass
class Override:
    value: str = ""
    values: list[str] = field(default_factory=list)
    append: bool = False


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match for target names (no '/' in names, so fnmatch's rules agree)."""
    if "[!" in pattern:
        pattern = pattern.replace("[!", "[\\!")
    return fnmatchcase(name, pattern.replace("[^", "[!"))


def expand_targets(pattern: str, names: list[str]) -> list[str]:
    if pattern in names:
        return [pattern]
    matched = [n for n in names if path_match(pattern, n)]
    if not matched:
        raise BakeError(f"could not find any target matching '{pattern}'")
    return matched


def parse(
    items: list[str], target_names: list[str], env_allowed: bool
) -> dict[str, dict[str, Override]]:
    out: dict[str, dict[str, Override]] = {}
    for item in items:
        lhs, has_value, value = item.partition("=")
        append = lhs.endswith("+")
        skey = lhs[:-1] if append else lhs
        keys = skey.split(".", 2)
        if len(keys) < 2:
            raise BakeError(f"invalid override key {skey}, expected target.name")
        if not has_value and keys[1] != "args":
            raise BakeError(f"invalid override {item}, expected target.name=value")
        if keys[1] not in KNOWN_KEYS:
            raise BakeError(
                f"unknown key: {keys[1]}", hint=f"--set accepts {', '.join(sorted(KNOWN_KEYS))}"
            )
        names = expand_targets(keys[0], target_names)
        okey = ".".join(keys[1:])
        for name in names:
            o = out.setdefault(name, {}).setdefault(okey, Override())
            kind = keys[1]
            if kind in LIST_KEYS:
                if has_value:
                    o.append = append
                    o.values.append(value)
            elif kind in ("resources", "secret"):
                if len(keys) != 3:
                    raise BakeError(f"invalid key {lhs}, {kind} requires name")
                if append:
                    raise BakeError(f"invalid key {lhs}, {kind} does not support append")
                o.value = value
            elif kind in ("args", "contexts"):
                if len(keys) != 3:
                    raise BakeError(f"invalid key {lhs}, {kind} requires name")
                if not has_value:
                    env = os.environ.get(keys[2]) if env_allowed else None
                    if env is None:
                        del out[name][okey]
                        continue
                    o.value = env
                else:
                    o.value = value
            elif has_value:
                o.value = value
    return out


def _bool(value: str, key: str) -> bool:
    try:
        return bf.parse_bool(value, value)
    except bf.FlagError:
        raise BakeError(f"invalid value {value} for boolean key {key}") from None


def apply(t: Target, overrides: dict[str, Override]) -> None:
    secret_overrides: dict[str, Override] = {}
    try:
        for key, o in overrides.items():
            head, _, sub = key.partition(".")
            value = o.value
            if head in ("context", "dockerfile", "target", "call", "shm-size", "network"):
                t.set({"network": "network"}.get(head, head), value)
            elif head in ("args", "labels", "contexts", "extra-hosts"):
                if not sub:
                    raise BakeError(f"invalid format for {head}, expecting {head}.<name>=<value>")
                current = t.get(head) or {}
                current[sub] = value
                t.set(head, current)
            elif head == "tags":
                t.tags = (t.tags or []) + o.values if o.append else list(o.values)
            elif head == "platform":
                t.platforms = (t.platforms or []) + o.values if o.append else list(o.values)
            elif head in ("no-cache-filter", "ulimits"):
                current = t.get(head) or []
                t.set(head, current + o.values if o.append else list(o.values))
            elif head in ("cache-from", "cache-to"):
                entries = bf.parse_cache_entries(o.values)
                attr = head.replace("-", "_")
                merged = (
                    bf.merge_list(getattr(t, attr), entries, bf.normalize_caches)
                    if o.append
                    else (entries or None)
                )
                setattr(t, attr, merged)
            elif head == "secret":
                secret_overrides[sub] = o
            elif head == "secrets":
                secrets = [bf.Secret.parse(v) for v in o.values if v]
                t.secret = (
                    bf.merge_list(t.secret, secrets, bf.normalize_secrets)
                    if o.append
                    else (secrets or None)
                )
            elif head == "ssh":
                keys = [bf.SSH.parse(v) for v in o.values if v]
                t.ssh = bf.merge_list(t.ssh, keys, bf.normalize_ssh) if o.append else (keys or None)
            elif head == "output":
                outs = [bf.Export.parse(v) for v in o.values if v]
                t.output = (
                    bf.merge_list(t.output, outs, bf.normalize_exports)
                    if o.append
                    else (outs or None)
                )
            elif head == "entitlements":
                t.entitlements = (t.entitlements or []) + o.values
            elif head == "annotations":
                t.annotations = (t.annotations or []) + o.values
            elif head == "attest":
                attests = [bf.Attest.parse(v) for v in o.values if v]
                t.attest = bf.merge_list(t.attest, attests, bf.normalize_attests)
            elif head == "policy":
                from bale.frontends.bake.target import decode_policy

                parsed = [decode_policy(v) for v in o.values]
                t.policy = (t.policy or []) + parsed if o.append else parsed
            elif head == "no-cache":
                t.no_cache = _bool(value, "no-cache")
            elif head == "pull":
                t.pull = _bool(value, "pull")
            elif head == "push":
                t.output = set_push(t.output or [], _bool(value, "push")) or None
            elif head == "load":
                t.output = set_load(t.output or [], _bool(value, "load")) or None
            elif head == "resources":
                if sub not in RESOURCE_KEYS:
                    raise BakeError(f"unknown resources key {sub}")
                res = dict(t.resources or {})
                if sub in RESOURCE_INTS:
                    try:
                        res[sub] = int(value)
                    except ValueError:
                        raise BakeError(
                            f"invalid value {value} for int64 key resources.{sub}"
                        ) from None
                else:
                    res[sub] = value
                t.resources = res
            else:
                raise BakeError(f"unknown key: {head}")
        for sid, o in secret_overrides.items():
            _update_secret(t, sid, o.value)
    except bf.FlagError as exc:
        raise BakeError(f"invalid value for {t.name}: {exc}") from None


def _update_secret(t: Target, sid: str, value: str) -> None:
    if not sid:
        raise BakeError("invalid format for secret, expecting secret.<id>=<value>")
    for s in t.secret or []:
        if s.id != sid:
            continue
        nxt = bf.Secret.parse(value)
        if nxt.id and nxt.id != sid:
            raise BakeError(f'secret override id "{nxt.id}" does not match declared secret "{sid}"')
        s.env, s.src = nxt.env, nxt.src
        return
    raise BakeError(f'secret "{sid}" must be declared before it can be overridden')


def set_push(outputs: list[bf.Export], push: bool) -> list[bf.Export]:
    if not push:
        i = 0
        while i < len(outputs):
            out = outputs[i]
            if out.type == "registry":
                outputs[i], outputs[-1] = outputs[-1], outputs[i]
                outputs.pop()
                continue
            if out.type == "image":
                out.attrs["push"] = "false"
            i += 1
        return outputs
    add = True
    for out in outputs:
        if out.type != "docker":
            add = False
        if out.type == "image":
            out.attrs["push"] = "true"
    if add:
        outputs.append(bf.Export("image", {"push": "true"}))
    return outputs


def set_load(outputs: list[bf.Export], load: bool) -> list[bf.Export]:
    if not load:
        return outputs
    for out in outputs:
        if out.type == "docker":
            if not out.dest:
                return outputs
        elif out.type not in ("image", "registry", "oci"):
            return outputs
    outputs.append(bf.Export("docker"))
    return outputs
