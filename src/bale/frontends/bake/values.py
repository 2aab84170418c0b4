"""Values of the bake language and go-cty's conversion rules over them.

A value is None (null), str, Decimal (number), bool, list (list, tuple or set) or dict (map or
object; keys kept in lexical order, as cty iterates them). Type constraints are `Type` values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Value = Any  # None | str | Decimal | bool | list[Value] | dict[str, Value]


class ConversionError(Exception):
    """Why a value does not fit a type, in cty's words ("string required")."""


@dataclass(frozen=True)
class Type:
    kind: str  # string number bool any list set map tuple object
    elem: Type | None = None
    elems: tuple[Type, ...] = ()
    attrs: tuple[tuple[str, Type], ...] = ()
    optional: frozenset[str] = frozenset()

    def friendly(self) -> str:
        """cty's FriendlyNameForConstraint."""
        if self.kind == "any":
            return "any type"
        if self.kind in ("list", "set", "map"):
            assert self.elem is not None
            return f"{self.kind} of {self.elem.friendly()}"
        return self.kind

    def is_primitive(self) -> bool:
        return self.kind in ("string", "number", "bool")


STRING = Type("string")
NUMBER = Type("number")
BOOL = Type("bool")
ANY = Type("any")


def list_of(t: Type) -> Type:
    return Type("list", elem=t)


def map_of(t: Type) -> Type:
    return Type("map", elem=t)


def obj(items: dict[str, Value]) -> dict[str, Value]:
    """An object/map value with its keys in cty's (lexical) order."""
    return {k: items[k] for k in sorted(items)}


def type_name(v: Value) -> str:
    """The friendly name of a value's own type, for error messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Decimal):
        return "number"
    if isinstance(v, list):
        return "tuple"
    if isinstance(v, dict):
        return "object"
    return "dynamic"


def format_number(n: Decimal) -> str:
    """A number as cty prints it: shortest exact decimal, no exponent."""
    if n == n.to_integral_value():
        return str(int(n))
    text = format(n.normalize(), "f")
    return text


def parse_number(text: str) -> Decimal | None:
    s = text.strip()
    if not s or s != text or s.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return None
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    return d


def to_string(v: Value) -> str:
    """Convert a primitive to string or raise (cty convert to cty.String)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format_number(v)
    if v is None:
        raise ConversionError("string required, but have null")
    raise ConversionError("string required")


def to_number(v: Value) -> Decimal:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, str) and not isinstance(v, bool):
        n = parse_number(v)
        if n is None:
            raise ConversionError("a number is required")
        return n
    raise ConversionError("number required")


def to_bool(v: Value) -> bool:
    if isinstance(v, bool):
        return v
    if v == "true":
        return True
    if v == "false":
        return False
    if isinstance(v, str):
        raise ConversionError("a bool is required")
    raise ConversionError("bool required")


def convert(v: Value, t: Type, path: str = "") -> Value:
    """go-cty convert.Convert: coerce `v` to `t` or raise ConversionError."""
    if v is None:
        return None
    prefix = f"{path}: " if path else ""
    try:
        if t.kind == "any":
            return v
        if t.kind == "string":
            if isinstance(v, (list, dict)):
                raise ConversionError("string required")
            return to_string(v)
        if t.kind == "number":
            if isinstance(v, (list, dict, bool)):
                raise ConversionError("number required")
            return to_number(v)
        if t.kind == "bool":
            if isinstance(v, (list, dict, Decimal)):
                raise ConversionError("bool required")
            return to_bool(v)
    except ConversionError as exc:
        raise ConversionError(prefix + str(exc)) from None
    if t.kind in ("list", "set"):
        assert t.elem is not None
        if not isinstance(v, list):
            raise ConversionError(f"{prefix}{t.friendly()} required")
        out = [convert(e, t.elem, f"element {i}") for i, e in enumerate(v)]
        return set_of(out) if t.kind == "set" else out
    if t.kind == "tuple":
        if not isinstance(v, list):
            raise ConversionError(f"{prefix}tuple required")
        if len(v) != len(t.elems):
            raise ConversionError(f"{prefix}tuple required with {len(t.elems)} elements")
        return [
            convert(e, et, f"element {i}") for i, (e, et) in enumerate(zip(v, t.elems, strict=True))
        ]
    if t.kind == "map":
        assert t.elem is not None
        if not isinstance(v, dict):
            raise ConversionError(f"{prefix}{t.friendly()} required")
        return obj({k: convert(e, t.elem, f"element {k!r}") for k, e in v.items()})
    if t.kind == "object":
        if not isinstance(v, dict):
            raise ConversionError(f"{prefix}object required")
        out_obj: dict[str, Value] = {}
        for name, at in t.attrs:
            if name in v:
                out_obj[name] = convert(v[name], at, f"attribute {name!r}")
            elif name in t.optional:
                out_obj[name] = None
            else:
                raise ConversionError(f'{prefix}attribute "{name}" is required')
        return obj(out_obj)
    raise ConversionError(f"{prefix}unsupported type {t.kind}")


def _sort_key(v: Value) -> tuple[int, Any]:
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, Decimal):
        return (0, v)
    if isinstance(v, str):
        return (1, v)
    return (3, json_encode(v))


def set_of(items: list[Value]) -> list[Value]:
    """A set value: unique elements in cty's canonical order."""
    seen: dict[str, Value] = {}
    for item in items:
        seen.setdefault(json_encode(item) + type_name(item), item)
    return sorted(seen.values(), key=_sort_key)


def equal(a: Value, b: Value) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


def to_json(v: Value) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, list):
        return [to_json(e) for e in v]
    if isinstance(v, dict):
        return {k: to_json(e) for k, e in v.items()}
    return v


def json_encode(v: Value) -> str:
    """jsonencode as cty does: compact, keys sorted, HTML characters escaped like Go."""
    return go_html_escape(_encode(v))


def _encode(v: Value) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(_encode(e) for e in v) + "]"
    if isinstance(v, dict):
        return (
            "{"
            + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _encode(v[k]) for k in sorted(v))
            + "}"
        )
    raise ConversionError(f"cannot encode {type_name(v)} as JSON")


def go_html_escape(text: str) -> str:
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def from_json(data: Any) -> Value:
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return data
    if isinstance(data, Decimal):
        return data
    if isinstance(data, (int, float)):
        return Decimal(str(data))
    if isinstance(data, list):
        return [from_json(e) for e in data]
    if isinstance(data, dict):
        return obj({str(k): from_json(e) for k, e in data.items()})
    raise ConversionError("unsupported JSON value")


def json_decode(text: str) -> Value:
    try:
        return from_json(json.loads(text, parse_float=Decimal, parse_int=Decimal))
    except (ValueError, RecursionError) as exc:
        raise ConversionError(f"invalid JSON: {exc}") from None


def implied_type_name(v: Value) -> str:
    """The friendly name of the type a default value implies."""
    return type_name(v)
