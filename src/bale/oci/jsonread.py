"""The one reader of JSON that comes from outside: registries, archives, config files, helpers.

Python's `json` recurses once per nesting level, so a document of 100 000 `[` ends in a
RecursionError, and it reads whatever size it is given. Every untrusted document goes through
`loads` instead, which bounds both before parsing and turns every failure into InvalidArgument
naming what was being read.

Limits: nesting at most `MAX_DEPTH` (64) arrays/objects — OCI documents, image configs and
in-toto statements use about 10; size at most `MAX_DOCUMENT` (64 MiB, the largest blob bale
reads into memory) unless the caller names a smaller one (registry manifests 4 MiB, token
replies 1 MiB).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate, repeat
from operator import sub
from typing import Any

from bale.errors import InvalidArgument

MAX_DEPTH = 64
MAX_DOCUMENT = 64 << 20

# A JSON string, or an unterminated one up to the end: the pattern cannot fail once it has
# started, and possessive quantifiers never backtrack, so stripping strings is one linear scan.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
# Brackets become 2 (open) or 0 (close); everything else is deleted.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects (brackets inside strings do not count)."""
    bare = _STRING.sub(b"", data).translate(_BRACKETS, _NOT_BRACKETS)
    # Running sum of +1 per opener, -1 per closer, computed in C: no Python loop per byte.
    return max(accumulate(map(sub, bare, repeat(1))), default=0)


def loads(
    data: bytes | str,
    what: str,
    *,
    limit: int = MAX_DOCUMENT,
    max_depth: int = MAX_DEPTH,
    parse_int: Callable[[str], Any] | None = None,
) -> Any:
    """Parse a JSON document of at most `limit` bytes and `max_depth` levels.

    `parse_int=float` reads every number as a float, as Go does into an `any`.
    """
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > limit:
        raise InvalidArgument(
            f"{what} is {len(raw)} bytes, more than the limit of {_size_text(limit)}"
        )
    if raw.count(b"[") + raw.count(b"{") > max_depth and depth(raw) > max_depth:
        raise InvalidArgument(f"malformed JSON in {what}: nested deeper than {max_depth} levels")
    try:
        return json.loads(raw, parse_int=parse_int)
    except RecursionError:  # unreachable after the depth check; kept as the last guard
        raise InvalidArgument(f"malformed JSON in {what}: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise InvalidArgument(f"malformed JSON in {what}: {exc}") from None


def loads_object(data: bytes | str, what: str, *, limit: int = MAX_DOCUMENT) -> dict[str, Any]:
    value = loads(data, what, limit=limit)
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} is not a JSON object")
    return value
