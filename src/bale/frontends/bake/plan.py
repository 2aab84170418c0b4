"""The resolved bake plan: frozen, plain values per target, and `--print` JSON as buildx's."""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from bale.frontends.bake import values as V
from bale.frontends.bake.target import Target


@dataclass(frozen=True)
class PlanGroup:
    name: str
    description: str
    targets: tuple[str, ...] | None


@dataclass(frozen=True)
class PlanTarget:
    """One build, resolved. None means "not set" (the Dockerfile's or builder's default)."""

    name: str
    description: str
    annotations: tuple[str, ...]
    attest: tuple[dict[str, Any], ...]  # {"type": ..., "disabled": bool?, attrs...}
    context: str
    contexts: dict[str, str]  # values may be "target:NAME" links
    dockerfile: str
    dockerfile_inline: str | None
    args: dict[str, str]
    labels: dict[str, str]
    tags: tuple[str, ...]
    cache_from: tuple[dict[str, str], ...]  # {"type": ..., attrs...}
    cache_to: tuple[dict[str, str], ...]
    target: str | None
    secrets: tuple[dict[str, str], ...]  # {"id", "src", "env"} as set
    ssh: tuple[dict[str, Any], ...]  # {"id", "paths"}
    platforms: tuple[str, ...]
    outputs: tuple[dict[str, str], ...]  # {"type", "dest"?, attrs...}
    pull: bool | None
    no_cache: bool | None
    network: str | None
    no_cache_filter: tuple[str, ...]
    shm_size: str | None
    ulimits: tuple[str, ...]
    resources: dict[str, Any]
    call: str | None
    entitlements: tuple[str, ...]
    extra_hosts: dict[str, str]
    policy: tuple[dict[str, str], ...]
    linked: bool
    print_json: dict[str, Any]  # the target exactly as `bake --print` shows it

    def linked_targets(self) -> dict[str, str]:
        """Named contexts that are other targets of the plan: context name -> target name."""
        return {k: v[len("target:") :] for k, v in self.contexts.items() if v.startswith("target:")}


@dataclass(frozen=True)
class Plan:
    groups: dict[str, PlanGroup]
    targets: dict[str, PlanTarget]

    def print_json(self) -> str:
        doc: dict[str, Any] = {}
        if self.groups:
            doc["group"] = {name: _group_json(self.groups[name]) for name in sorted(self.groups)}
        doc["target"] = {name: self.targets[name].print_json for name in sorted(self.targets)}
        return V.go_html_escape(json.dumps(doc, indent=2, ensure_ascii=False))


def _group_json(g: PlanGroup) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if g.description:
        out["description"] = g.description
    out["targets"] = list(g.targets) if g.targets is not None else None
    return out


def _esc(s: str) -> str:
    # --print output must read back as the same definition: keep template markers literal.
    return s.replace("${", "$${").replace("%{", "%%{")


def clean_context(path: str) -> str:
    if path.startswith("cwd://"):
        return posixpath.normpath(path[len("cwd://") :])
    if "://" in path or path.startswith("git@"):
        return path
    return posixpath.normpath(path)


def target_json(t: Target) -> dict[str, Any]:
    """buildx's Target JSON: struct field order, `omitempty`, escaped templates."""
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        # Go's omitempty: nil pointers and empty slices/maps are left out; "" is kept.
        if value is None or (isinstance(value, (list, dict)) and not value):
            return
        out[key] = value

    put("description", t.description or None)
    put("annotations", [_esc(a) for a in t.annotations or []])
    put("attest", [a.to_json() for a in t.attest or []])
    put("context", t.context)
    put("contexts", dict(sorted((t.contexts or {}).items())))
    put("dockerfile", t.dockerfile)
    put("dockerfile-inline", _esc(t.dockerfile_inline) if t.dockerfile_inline is not None else None)
    put(
        "args", {k: (_esc(v) if v is not None else None) for k, v in sorted((t.args or {}).items())}
    )
    put(
        "labels",
        {k: (_esc(v) if v is not None else None) for k, v in sorted((t.labels or {}).items())},
    )
    put("tags", list(t.tags or []))
    put("cache-from", [c.to_json() for c in t.cache_from or []])
    put("cache-to", [c.to_json() for c in t.cache_to or []])
    put("target", t.target)
    put("secret", [s.to_json() for s in t.secret or []])
    put("ssh", [s.to_json() for s in t.ssh or []])
    put("platforms", list(t.platforms or []))
    put("output", [o.to_json() for o in t.output or []])
    put("pull", t.pull)
    put("no-cache", t.no_cache)
    put("network", t.network)
    put("no-cache-filter", list(t.no_cache_filter or []))
    put("shm-size", t.shm_size)
    put("ulimits", list(t.ulimits or []))
    if t.resources is not None:
        out["resources"] = {k: t.resources[k] for k in _RESOURCE_ORDER if k in t.resources}
    put("call", t.call)
    put("entitlements", list(t.entitlements or []))
    put(
        "extra-hosts",
        {k: (_esc(v) if v is not None else None) for k, v in sorted((t.extra_hosts or {}).items())},
    )
    put("policy", [dict(p) for p in t.policy or []])
    return out


_RESOURCE_ORDER = (
    "memory",
    "memory-swap",
    "cpu-shares",
    "cpu-period",
    "cpu-quota",
    "cpuset-cpus",
    "cpuset-mems",
)


def freeze(t: Target) -> PlanTarget:
    printed = target_json(t)
    return PlanTarget(
        name=t.name,
        description=t.description,
        annotations=tuple(t.annotations or ()),
        attest=tuple(a.to_json() for a in t.attest or ()),
        context=t.context or ".",
        contexts=dict(t.contexts or {}),
        dockerfile=t.dockerfile or "Dockerfile",
        dockerfile_inline=t.dockerfile_inline,
        args={k: v for k, v in (t.args or {}).items() if v is not None},
        labels={k: v for k, v in (t.labels or {}).items() if v is not None},
        tags=tuple(t.tags or ()),
        cache_from=tuple(c.to_json() for c in t.cache_from or ()),
        cache_to=tuple(c.to_json() for c in t.cache_to or ()),
        target=t.target,
        secrets=tuple(s.to_json() for s in t.secret or ()),
        ssh=tuple(s.to_json() for s in t.ssh or ()),
        platforms=tuple(t.platforms or ()),
        outputs=tuple(o.to_json() for o in t.output or ()),
        pull=t.pull,
        no_cache=t.no_cache,
        network=t.network,
        no_cache_filter=tuple(t.no_cache_filter or ()),
        shm_size=t.shm_size,
        ulimits=tuple(t.ulimits or ()),
        resources=dict(t.resources or {}),
        call=t.call,
        entitlements=tuple(t.entitlements or ()),
        extra_hosts={k: v for k, v in (t.extra_hosts or {}).items() if v is not None},
        policy=tuple(dict(p) for p in t.policy or ()),
        linked=t.linked,
        print_json=printed,
    )
