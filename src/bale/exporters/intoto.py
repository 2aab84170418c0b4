"""in-toto statements as BuildKit writes them: the envelope shared by provenance and SBOMs.

BuildKit ≥ 0.31 writes `_type: https://in-toto.io/Statement/v1` for every predicate;
earlier releases wrote `https://in-toto.io/Statement/v0.1` (the older attestation manifest
shape re-envelopes statements so: see bale.exporters.attestation_manifest).
Subjects are the image names as package URLs (`pkg:docker/app@1?platform=linux%2Famd64`)
with the platform manifest's digest, exactly as BuildKit's image exporter names them.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from bale.oci.digest import Digest
from bale.oci.platform import Platform
from bale.oci.reference import Reference

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
# in-toto's placeholder for a subject whose name carries no meaning.
UNNAMED = "_"


def _query_escape(text: str) -> str:
    # Go's url.QueryEscape, which packageurl-go uses for namespace and name segments.
    return urllib.parse.quote(text, safe="-_.~").replace("%20", "+")


def _path_escape(text: str) -> str:
    # Go's url.PathEscape, which packageurl-go uses for the version and qualifier values.
    return urllib.parse.quote(text, safe="-_.~$&+:=@")


def image_purl(ref: str, platform: Platform | None = None, *, local: bool = False) -> str:
    """BuildKit's `purl.RefToPURL`: `pkg:docker/ns/name@tag?digest=…&platform=…`.

    `local` selects the `oci` type BuildKit uses for images from an OCI layout context."""
    parsed = Reference.parse(ref, default_tag=False)
    qualifiers: list[tuple[str, str]] = []
    if parsed.digest is not None:
        qualifiers.append(("digest", str(parsed.digest)))
    tag = parsed.tag or ("" if parsed.digest is not None else "latest")
    namespace, _, name = parsed.familiar_name.rpartition("/")
    if platform is not None:
        qualifiers.append(("platform", str(platform)))
    text = "pkg:" + ("oci" if local else "docker") + "/"
    if namespace:
        text += "/".join(_query_escape(part) for part in namespace.split("/")) + "/"
    text += _query_escape(name)
    if tag:
        text += "@" + _path_escape(tag)
    if qualifiers:
        text += "?" + "&".join(f"{k}={_path_escape(v)}" for k, v in qualifiers)
    return text


def digest_set(digest: Digest) -> dict[str, str]:
    return {digest.algorithm: digest.hex}


def subjects(names: Sequence[str], platform: Platform, digest: Digest) -> list[dict[str, Any]]:
    """One subject per image name, all with the platform manifest's digest.

    BuildKit writes an empty list for an unnamed image; in-toto requires at least one
    subject, so an unnamed image gets in-toto's placeholder name `_`."""
    named = [image_purl(name, platform) for name in names if name]
    return [{"name": n, "digest": digest_set(digest)} for n in (named or [UNNAMED])]


def statement(
    predicate_type: str,
    predicate: Mapping[str, Any],
    subject: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The statement in BuildKit's field order (`_type`, `predicateType`, `subject`, …)."""
    return {
        "_type": STATEMENT_V1,
        "predicateType": predicate_type,
        "subject": [dict(s) for s in subject],
        "predicate": dict(predicate),
    }


class _GoEncoder(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        text = super().encode(o)
        # Go's json.Marshal escapes HTML-significant characters and the JS line separators.
        for raw, escaped in (
            ("<", "\\u003c"),
            (">", "\\u003e"),
            ("&", "\\u0026"),
            ("\u2028", "\\u2028"),
            ("\u2029", "\\u2029"),
        ):
            text = text.replace(raw, escaped)
        return text


def statement_bytes(value: Mapping[str, Any]) -> bytes:
    """The bytes BuildKit stores for a statement: Go's `json.Marshal` (compact, keys in
    the order given, `<>&` escaped, UTF-8 unescaped)."""
    encoder = _GoEncoder(separators=(",", ":"), ensure_ascii=False)
    return encoder.encode(value).encode()
