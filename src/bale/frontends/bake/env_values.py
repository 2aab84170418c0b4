"""Variable values given in the environment, as buildx's hclparser reads them: JSON (a
`NAME_JSON` variable for a typed one), CSV for lists, sets, tuples and `k:v` maps, and
primitives parsed with Go's rules (strconv.ParseBool, ParseFloat) and Go's error words."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bale.frontends.bake import buildflags as bf
from bale.frontends.bake import values as V


def from_env(
    name: str,
    env: str,
    is_json: bool,
    typ: V.Type,
    typed: bool,
    has_default: bool,
    default: Any,
) -> Any:
    """A variable's value from its environment text: JSON for a typed `NAME_JSON`, CSV for
    collections, else a primitive of the declared type or of the default's type."""
    if typed and is_json:
        try:
            return V.convert(V.json_decode(env), typ)
        except V.ConversionError as exc:
            raise V.ConversionError(f"failed to convert variable {name} from JSON: {exc}") from None
    if typ.kind in ("list", "set", "tuple", "map"):
        try:
            return from_csv(name, env, typ)
        except V.ConversionError as exc:
            raise V.ConversionError(f"failed to convert variable {name} from CSV: {exc}") from None
    if typed and typ.is_primitive():
        return primitive(name, env, typ)
    if typed and typ.kind != "any":
        raise V.ConversionError(f"unsupported type {typ.friendly()} for variable {name}")
    if not has_default or default is None:
        return env
    if isinstance(default, (list, dict)):
        raise V.ConversionError(f"unsupported type {V.type_name(default)} for variable {name}")
    kind = (
        V.BOOL
        if isinstance(default, bool)
        else V.NUMBER
        if isinstance(default, Decimal)
        else V.STRING
    )
    return primitive(name, env, kind)


def primitive(name: str, text: str, t: V.Type) -> Any:
    if t.kind == "string":
        return text
    if t.kind == "bool":
        try:
            return bf.parse_bool(text, text)
        except bf.FlagError:
            raise V.ConversionError(
                f'failed to parse {name} as bool: strconv.ParseBool: parsing "{text}": invalid syntax'
            ) from None
    if t.kind == "number":
        n = V.parse_number(text)
        if n is None:
            raise V.ConversionError(
                f'failed to parse {name} as number: strconv.ParseFloat: parsing "{text}": invalid syntax'
            )
        return n
    raise V.ConversionError(f"{name} of type {t.friendly()} is not a primitive")


def from_csv(name: str, text: str, t: V.Type) -> Any:
    try:
        fields = bf.csv_fields(text)
    except bf.FlagError as exc:
        raise V.ConversionError(f"failed to parse {text} as CSV: {exc}") from None
    if t.kind in ("list", "set"):
        assert t.elem is not None
        if not t.elem.is_primitive():
            raise V.ConversionError(f"unsupported type {t.friendly()} for CSV specification")
        try:
            items = [primitive(name, f, t.elem) for f in fields]
        except V.ConversionError as exc:
            raise V.ConversionError(
                f"failed to parse element of type {t.friendly()}: {exc}"
            ) from None
        return V.set_of(items) if t.kind == "set" else items
    if t.kind == "tuple":
        if len(t.elems) != len(fields):
            raise V.ConversionError(
                f"{t.friendly()} expects {len(t.elems)} elements but only {len(fields)} provided"
            )
        out = []
        for f, et in zip(fields, t.elems, strict=True):
            if not et.is_primitive():
                raise V.ConversionError(f"unsupported type {t.friendly()} for CSV specification")
            try:
                out.append(primitive(name, f, et))
            except V.ConversionError as exc:
                raise V.ConversionError(
                    f"failed to parse element of type {t.friendly()}: {exc}"
                ) from None
        return out
    assert t.elem is not None
    if not t.elem.is_primitive():
        raise V.ConversionError(f"unsupported type {t.friendly()} for CSV specification")
    m: dict[str, Any] = {}
    for f in fields:
        try:
            kv = _colon_fields(f)
        except bf.FlagError as exc:
            raise V.ConversionError(
                f"failed to parse {f} as k/v for variable {name}: {exc}"
            ) from None
        if len(kv) != 2:
            raise V.ConversionError(f"expected one k/v pair but got {len(kv)} pieces from {f}")
        try:
            m[kv[0]] = primitive(name, kv[1], t.elem)
        except V.ConversionError as exc:
            raise V.ConversionError(
                f"failed to parse element from type {t.friendly()}: {exc}"
            ) from None
    return V.obj(m)


def _colon_fields(text: str) -> list[str]:
    """Split `k:v` as a CSV record with ':' for the separator."""
    swap: dict[str, str | int | None] = {",": ":", ":": ","}
    table = str.maketrans(swap)
    return [f.translate(table) for f in bf.csv_fields(text.translate(table))]
