"""npm packages: every installed `node_modules/NAME/package.json` (scoped
`node_modules/@scope/name/package.json` too, at any depth), and the entries of
`package-lock.json` v2/v3 lockfiles (`node_modules/.package-lock.json` included) that are
not installed beside them."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from bale.exporters.sbom.package import Package, purl

PACKAGE_JSON = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@.][^/]*/package\.json$")
LOCKFILE = re.compile(r"(?:^|/)(?:package-lock\.json|node_modules/\.package-lock\.json)$")
_NAME = re.compile(r"^(?:@[a-z0-9][\w.~-]*/)?[a-z0-9][\w.~-]*$", re.IGNORECASE)


def _load(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _license(doc: dict[str, Any]) -> tuple[str, ...]:
    value = doc.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    legacy = doc.get("licenses")
    if isinstance(legacy, list):
        types = [x.get("type") for x in legacy if isinstance(x, dict)]
        return tuple(t for t in types if isinstance(t, str) and t.strip())
    return ()


def _package(
    name: str, version: str, licenses: tuple[str, ...], location: str, source: str
) -> Package:
    scope, _, base = name.rpartition("/")
    return Package(
        name=name,
        version=version,
        kind="npm",
        purl=purl("npm", base, version, namespace=scope),
        licenses=licenses,
        location=location,
        source=source,
    )


def parse_package_json(data: bytes, *, location: str) -> Package | None:
    doc = _load(data)
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not _NAME.match(name):
        return None
    return _package(name, version, _license(doc), location, "npm package.json")


def parse_lockfile(data: bytes, *, location: str) -> list[tuple[str, Package, bool]]:
    """(install path of its package.json, package, dev-only) for each locked package;
    lockfiles before v2 have no `packages` map and give nothing."""
    doc = _load(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), dict):
        return []
    base = posixpath.dirname(location)
    if base.endswith("node_modules"):  # the hidden lockfile inside node_modules
        base = posixpath.dirname(base)
    out: list[tuple[str, Package, bool]] = []
    for key, entry in doc["packages"].items():
        if not key or not isinstance(entry, dict) or entry.get("link"):
            continue
        _, marker, tail = key.rpartition("node_modules/")
        name = entry.get("name") if isinstance(entry.get("name"), str) else tail
        version = entry.get("version")
        if not marker or not isinstance(version, str) or not _NAME.match(str(name)):
            continue
        installed = posixpath.join(base, key, "package.json")
        package = _package(str(name), version, _license(entry), location, "npm lockfile")
        out.append((installed, package, entry.get("dev") is True))
    return out
