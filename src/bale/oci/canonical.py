"""Canonical JSON: the one byte encoding bale uses for every document it writes."""

from __future__ import annotations

import json
from typing import Any

from bale.oci import jsonread


def dumps(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads_object(data: bytes, what: str = "document") -> dict[str, Any]:
    """Parse a JSON object (bounded in size and depth), every failure an InvalidArgument."""
    return jsonread.loads_object(data, what)
