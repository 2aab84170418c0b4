"""Canonical JSON: the one byte encoding bale uses for every document it writes."""

from __future__ import annotations

import json
from typing import Any

from bale.errors import InvalidArgument


def dumps(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads_object(data: bytes, what: str = "document") -> dict[str, Any]:
    """Parse a JSON object, turning every failure into InvalidArgument."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"malformed JSON in {what}: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"malformed {what}: expected a JSON object")
    return value
