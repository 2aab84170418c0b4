"""Validators for in-toto statements carrying SLSA provenance, written from the specs:

- in-toto Statement v1 (`in-toto/attestation spec/v1/statement.md`, `resource_descriptor.md`,
  `digest_set.md`, `field_types.md`),
- SLSA Provenance v1 (`slsa.dev/spec/v1.0/provenance`, `schema/provenance.cue`),
- SLSA Provenance v0.2 (`slsa.dev/provenance/v0.2`).

Each returns the list of problems, `path: what is wrong`; empty means valid. Unknown fields
are allowed: both specs tell consumers to ignore them.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
# digest_set.md: the named standard algorithms use lowercase hex.
_HEX_ALGORITHMS = {
    "sha256": 64,
    "sha224": 56,
    "sha384": 96,
    "sha512": 128,
    "sha1": 40,
    "md5": 32,
}


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, what: str) -> None:
        self.problems.append(f"{path}: {what}")

    def obj(self, value: Any, path: str, *, required: bool) -> dict[str, Any] | None:
        if value is None:
            if required:
                self.fail(path, "required")
            return None
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        return value

    def string(self, value: Any, path: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(path, "required")
            return None
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return None
        return value

    def boolean(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, bool):
            self.fail(path, "must be a boolean")

    def uri(self, value: Any, path: str, *, required: bool = False) -> None:
        """field_types.md TypeURI/ResourceURI: RFC 3986 with lowercase scheme and authority."""
        text = self.string(value, path, required=required)
        if text is None:
            return
        if not text:
            if required:
                self.fail(path, "required (empty)")
            return
        if any(c.isspace() for c in text):
            self.fail(path, f"not a URI (whitespace): {text!r}")
            return
        parts = urllib.parse.urlsplit(text)
        if not _SCHEME.fullmatch(parts.scheme):
            self.fail(path, f"not an absolute URI with a lowercase scheme: {text!r}")
        host = parts.netloc.rpartition("@")[2]
        if host != host.lower():
            self.fail(path, f"authority must be lowercase: {text!r}")

    def timestamp(self, value: Any, path: str) -> None:
        text = self.string(value, path)
        if text is not None and not _TIMESTAMP.fullmatch(text):
            self.fail(path, f"not an RFC 3339 UTC timestamp: {text!r}")

    def digest_set(self, value: Any, path: str, *, required: bool = False) -> None:
        digests = self.obj(value, path, required=required)
        if digests is None:
            return
        if not digests:
            self.fail(path, "a DigestSet holds at least one digest")
        for algorithm, hexpart in digests.items():
            if not isinstance(hexpart, str):
                self.fail(f"{path}.{algorithm}", "must be a string")
                continue
            want = _HEX_ALGORITHMS.get(algorithm)
            if want is not None and not re.fullmatch(rf"[0-9a-f]{{{want}}}", hexpart):
                self.fail(f"{path}.{algorithm}", f"not {want} lowercase hex characters")

    def resource_descriptor(self, value: Any, path: str) -> None:
        rd = self.obj(value, path, required=True)
        if rd is None:
            return
        if not any(rd.get(k) for k in ("uri", "digest", "content")):
            self.fail(path, "a ResourceDescriptor needs one of uri, digest or content")
        self.uri(rd.get("uri"), f"{path}.uri")
        self.digest_set(rd.get("digest"), f"{path}.digest")
        self.string(rd.get("name"), f"{path}.name")
        self.uri(rd.get("downloadLocation"), f"{path}.downloadLocation")
        self.string(rd.get("mediaType"), f"{path}.mediaType")
        self.string(rd.get("content"), f"{path}.content")
        self.obj(rd.get("annotations"), f"{path}.annotations", required=False)

    def descriptors(self, value: Any, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.fail(path, "must be an array")
            return
        for i, item in enumerate(value):
            self.resource_descriptor(item, f"{path}[{i}]")


def _statement(c: _Checker, doc: Any, predicate_type: str, statement_types: set[str]) -> Any:
    top = c.obj(doc, "statement", required=True)
    if top is None:
        return None
    if top.get("_type") not in statement_types:
        c.fail("_type", f"must be one of {sorted(statement_types)}, is {top.get('_type')!r}")
    if top.get("predicateType") != predicate_type:
        c.fail("predicateType", f"must be {predicate_type}")
    subject = top.get("subject")
    if not isinstance(subject, list) or not subject:
        c.fail("subject", "a non-empty array is required")
    else:
        for i, item in enumerate(subject):
            entry = c.obj(item, f"subject[{i}]", required=True)
            if entry is not None:
                c.string(entry.get("name"), f"subject[{i}].name")
                c.digest_set(entry.get("digest"), f"subject[{i}].digest", required=True)
    return c.obj(top.get("predicate"), "predicate", required=False)


def validate_slsa_v1(doc: Any) -> list[str]:
    """Problems in an in-toto Statement v1 carrying `https://slsa.dev/provenance/v1`."""
    c = _Checker()
    pred = _statement(c, doc, "https://slsa.dev/provenance/v1", {"https://in-toto.io/Statement/v1"})
    if pred is None:
        return c.problems
    bd = c.obj(pred.get("buildDefinition"), "buildDefinition", required=True)
    if bd is not None:
        c.uri(bd.get("buildType"), "buildDefinition.buildType", required=True)
        c.obj(bd.get("externalParameters"), "buildDefinition.externalParameters", required=True)
        c.obj(bd.get("internalParameters"), "buildDefinition.internalParameters", required=False)
        c.descriptors(bd.get("resolvedDependencies"), "buildDefinition.resolvedDependencies")
    rd = c.obj(pred.get("runDetails"), "runDetails", required=True)
    if rd is not None:
        builder = c.obj(rd.get("builder"), "runDetails.builder", required=True)
        if builder is not None:
            c.uri(builder.get("id"), "runDetails.builder.id", required=True)
            version = c.obj(builder.get("version"), "runDetails.builder.version", required=False)
            for key, value in (version or {}).items():
                c.string(value, f"runDetails.builder.version.{key}")
            c.descriptors(
                builder.get("builderDependencies"), "runDetails.builder.builderDependencies"
            )
        meta = c.obj(rd.get("metadata"), "runDetails.metadata", required=False)
        if meta is not None:
            c.string(meta.get("invocationId"), "runDetails.metadata.invocationId")
            c.timestamp(meta.get("startedOn"), "runDetails.metadata.startedOn")
            c.timestamp(meta.get("finishedOn"), "runDetails.metadata.finishedOn")
        c.descriptors(rd.get("byproducts"), "runDetails.byproducts")
    return c.problems


def validate_slsa_v02(doc: Any, *, legacy_statement: bool = False) -> list[str]:
    """Problems in a statement carrying `https://slsa.dev/provenance/v0.2`."""
    c = _Checker()
    types = {"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"}
    if legacy_statement:
        types = {"https://in-toto.io/Statement/v0.1"}
    pred = _statement(c, doc, "https://slsa.dev/provenance/v0.2", types)
    if pred is None:
        return c.problems
    builder = c.obj(pred.get("builder"), "builder", required=True)
    if builder is not None:
        c.uri(builder.get("id"), "builder.id", required=True)
    c.uri(pred.get("buildType"), "buildType", required=True)
    inv = c.obj(pred.get("invocation"), "invocation", required=False)
    if inv is not None:
        cs = c.obj(inv.get("configSource"), "invocation.configSource", required=False)
        if cs is not None:
            c.uri(cs.get("uri"), "invocation.configSource.uri")
            c.digest_set(cs.get("digest"), "invocation.configSource.digest")
            c.string(cs.get("entryPoint"), "invocation.configSource.entryPoint")
        c.obj(inv.get("parameters"), "invocation.parameters", required=False)
        c.obj(inv.get("environment"), "invocation.environment", required=False)
    c.obj(pred.get("buildConfig"), "buildConfig", required=False)
    meta = c.obj(pred.get("metadata"), "metadata", required=False)
    if meta is not None:
        c.string(meta.get("buildInvocationId"), "metadata.buildInvocationId")
        c.timestamp(meta.get("buildStartedOn"), "metadata.buildStartedOn")
        c.timestamp(meta.get("buildFinishedOn"), "metadata.buildFinishedOn")
        comp = c.obj(meta.get("completeness"), "metadata.completeness", required=False)
        for key in ("parameters", "environment", "materials"):
            c.boolean((comp or {}).get(key), f"metadata.completeness.{key}")
        c.boolean(meta.get("reproducible"), "metadata.reproducible")
    materials = pred.get("materials")
    if materials is not None:
        if not isinstance(materials, list):
            c.fail("materials", "must be an array")
        else:
            for i, item in enumerate(materials):
                m = c.obj(item, f"materials[{i}]", required=True)
                if m is not None:
                    c.uri(m.get("uri"), f"materials[{i}].uri")
                    c.digest_set(m.get("digest"), f"materials[{i}].digest")
    return c.problems
