"""Licence statements as valid SPDX licence expressions.

Packages record licences in their own dialects: Debian's DEP-5 short names (`GPL-2+`,
`Expat`), Alpine's SPDX-ish lists, Python's trove classifiers, npm's SPDX strings. What
maps onto the SPDX licence list becomes that expression (checked with the same
`license-expression` library SPDX tools validate with); the rest becomes a
`LicenseRef-…` whose text the document carries, so nothing is lost and nothing invalid
is written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

_FAMILY = re.compile(r"(?i)(a|l)?gpl-?(\d(?:\.\d)?)(\+)?")
_GFDL = re.compile(r"(?i)gfdl-?(\d\.\d)(\+)?(?:-no-invariants)?")
_NAMES = {
    "expat": "MIT",
    "artistic": "Artistic-1.0",
    "apache-2": "Apache-2.0",
    "psf-2": "PSF-2.0",
    "python": "Python-2.0",
    "mpl-2": "MPL-2.0",
    "cc0": "CC0-1.0",
    "zlib": "Zlib",
    "bsd-2": "BSD-2-Clause",
    "bsd-3": "BSD-3-Clause",
    "boost": "BSL-1.0",
    "lgpl": "LGPL-2.0-or-later",
}
_KEYWORDS = {"and": "AND", "or": "OR", "with": "WITH"}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_MAX_TEXT = 1000


@functools.cache
def _licensing() -> Any:
    return get_spdx_licensing()


def _valid(text: str) -> str | None:
    """`text` as a valid SPDX expression with the list's spelling, or None."""
    licensing = _licensing()
    # license-expression 30.4 fails inside its own error path on some Debian statements
    # ("MIT/X11", "GPL-1+ or Artistic, and Expat": AttributeError on ExpressionError), so
    # any failure of the library means "not an SPDX expression", never a failed scan.
    try:
        info = licensing.validate(text, strict=True)
    except (ExpressionError, AttributeError, TypeError, ValueError):
        return None
    if info.errors or info.invalid_symbols:
        return None
    try:
        return str(licensing.parse(text, strict=True).render("{symbol.key}"))
    except (ExpressionError, AttributeError, TypeError, ValueError):
        return None


def _debian_token(token: str) -> str:
    lower = token.lower().rstrip(",")
    if lower in _KEYWORDS:
        return _KEYWORDS[lower]
    if lower in _NAMES:
        return _NAMES[lower]
    family = _FAMILY.fullmatch(lower)
    if family:
        prefix = (family.group(1) or "").upper()
        version = family.group(2) if "." in family.group(2) else family.group(2) + ".0"
        suffix = "-or-later" if family.group(3) else "-only"
        return f"{prefix}GPL-{version}{suffix}"
    gfdl = _GFDL.fullmatch(lower)
    if gfdl:
        return f"GFDL-{gfdl.group(1)}{'-or-later' if gfdl.group(2) else '-only'}"
    return token


def to_spdx(statement: str) -> str | None:
    """A licence statement as an SPDX expression, or None when it is not one."""
    text = " ".join(statement.split())
    if not text or len(text) > _MAX_TEXT:
        return None
    direct = _valid(text)
    if direct is not None:
        return direct
    tokens = _TOKEN.findall(text)
    mapped = " ".join(_debian_token(t) for t in tokens)
    result = _valid(mapped)
    if result is None and len(tokens) > 1 and not any(t.lower() in _KEYWORDS for t in tokens):
        # Alpine's older "MIT BSD GPL-2.0" lists every licence that applies.
        result = _valid(" AND ".join(_debian_token(t) for t in tokens if t not in "()"))
    return result


def license_ref(statement: str) -> str:
    """The `LicenseRef-` id for a statement that is not an SPDX expression."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", statement.strip()).strip("-.")[:64]
    return "LicenseRef-" + (slug or "unknown")


def declared(statements: Iterable[str]) -> tuple[str, dict[str, str]]:
    """(SPDX expression, {LicenseRef id: text}) for a package's licence statements; the
    expression is NOASSERTION when there are none."""
    parts: list[str] = []
    refs: dict[str, str] = {}
    for statement in statements:
        statement = statement.strip()
        if not statement:
            continue
        expression = to_spdx(statement)
        if expression is None:
            expression = license_ref(statement)
            refs[expression] = statement[:_MAX_TEXT]
        if " " in expression:
            expression = f"({expression})"
        if expression not in parts:
            parts.append(expression)
    if not parts:
        return "NOASSERTION", {}
    if len(parts) == 1 and parts[0].startswith("("):
        return parts[0][1:-1], refs
    return " AND ".join(parts), refs
