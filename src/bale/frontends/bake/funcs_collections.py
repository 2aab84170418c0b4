"""go-cty's collection, set and encoding functions, as buildx registers them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from bale.frontends.bake import values as V
from bale.frontends.bake.funcs import LS, ArgError, N, P, S, fn, integer

LIST = V.Type("list", elem=V.ANY)
MAP = V.Type("map", elem=V.ANY)

# range() may not produce more elements than this (cty refuses very large ranges too).
MAX_RANGE = 1_000_000


def _list(v: Any, index: int) -> list[Any]:
    if not isinstance(v, list):
        raise ArgError("list, set or tuple required", index)
    return v


def _map(v: Any, index: int) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ArgError("map or object required", index)
    return v


@fn("length", P("value"))
def _length(v: Any) -> Decimal:
    if isinstance(v, (str, list, dict)):
        return Decimal(len(v))
    raise ArgError("collection or string required", 0)


@fn("concat", variadic=P("seqs"))
def _concat(*seqs: Any) -> list[Any]:
    if not seqs:
        raise ArgError("at least one argument is required")
    out: list[Any] = []
    for i, seq in enumerate(seqs):
        out.extend(_list(seq, i))
    return out


@fn("flatten", P("list"))
def _flatten(v: Any) -> list[Any]:
    out: list[Any] = []

    def walk(items: list[Any], depth: int) -> None:
        if depth > 64:
            raise ArgError("lists nested too deeply")
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                out.append(item)

    walk(_list(v, 0), 0)
    return out


@fn("distinct", P("list"))
def _distinct(v: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list(v, 0):
        if not any(V.equal(item, o) for o in out):
            out.append(item)
    return out


@fn("compact", P("list", LS))
def _compact(v: list[Any]) -> list[str]:
    return [s for s in v if s]


@fn("contains", P("list"), P("value", None, True))
def _contains(lst: Any, value: Any) -> bool:
    if isinstance(lst, dict):
        return any(V.equal(v, value) for v in lst.values())
    return any(V.equal(v, value) for v in _list(lst, 0))


@fn("element", P("list"), P("index", N))
def _element(lst: Any, index: Decimal) -> Any:
    items = _list(lst, 0)
    if not items:
        raise ArgError("cannot use element function with an empty list", 0)
    i = integer(index, 1, "index")
    if i < 0:
        raise ArgError("cannot use element function with a negative index", 1)
    return items[i % len(items)]


@fn("index", P("collection"), P("key", None))
def _index(coll: Any, key: Any) -> Any:
    if isinstance(coll, list):
        n = V.to_number(key)
        if n != n.to_integral_value() or not 0 <= n < len(coll):
            raise ArgError("the given index is not in the collection", 1)
        return coll[int(n)]
    if isinstance(coll, dict):
        k = V.to_string(key)
        if k not in coll:
            raise ArgError("the given key was not found in the collection", 1)
        return coll[k]
    raise ArgError("list, map or tuple required", 0)


@fn("indexof", P("list"), P("value", None, True))
def _indexof(lst: Any, value: Any) -> Decimal:
    if not isinstance(lst, list):
        raise ArgError("argument must be a list or tuple")
    if not lst:
        raise ArgError("cannot search an empty list")
    for i, item in enumerate(lst):
        if V.equal(item, value):
            return Decimal(i)
    raise ArgError("item not found")


@fn("hasindex", P("collection"), P("key", None))
def _hasindex(coll: Any, key: Any) -> bool:
    if isinstance(coll, list):
        try:
            n = V.to_number(key)
        except V.ConversionError:
            return False
        return n == n.to_integral_value() and 0 <= n < len(coll)
    if isinstance(coll, dict):
        return isinstance(key, str) and key in coll
    raise ArgError("collection required", 0)


@fn("keys", P("inputMap"))
def _keys(m: Any) -> list[str]:
    return sorted(_map(m, 0))


@fn("values", P("mapping"))
def _values(m: Any) -> list[Any]:
    mm = _map(m, 0)
    return [mm[k] for k in sorted(mm)]


@fn("lookup", P("inputMap"), P("key", S), variadic=P("default", None, True))
def _lookup(m: Any, key: str, *default: Any) -> Any:
    mm = _map(m, 0)
    if len(default) > 1:
        raise ArgError("lookup() takes at most three arguments")
    if key in mm:
        return mm[key]
    if default:
        return default[0]
    raise ArgError(f'the given key "{key}" was not found')


@fn("merge", variadic=P("maps", None, True))
def _merge(*maps: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, m in enumerate(maps):
        if m is None:
            continue
        out.update(_map(m, i))
    return V.obj(out)


@fn("zipmap", P("keys", LS), P("values"))
def _zipmap(keys: list[str], vals: Any) -> dict[str, Any]:
    items = _list(vals, 1)
    if len(keys) != len(items):
        raise ArgError(
            f"number of keys ({len(keys)}) does not match number of values ({len(items)})"
        )
    return V.obj(dict(zip(keys, items, strict=True)))


@fn("range", variadic=P("params", N))
def _range(*params: Decimal) -> list[Decimal]:
    if len(params) == 1:
        start, limit, step = Decimal(0), params[0], Decimal(1)
    elif len(params) == 2:
        start, limit, step = params[0], params[1], Decimal(1 if params[1] >= params[0] else -1)
    elif len(params) == 3:
        start, limit, step = params
    else:
        raise ArgError("must have one, two, or three arguments")
    if step == 0:
        raise ArgError("step must not be zero")
    if (step > 0 and start > limit) or (step < 0 and start < limit):
        return []
    count = int((limit - start) / step)
    if count > MAX_RANGE:
        raise ArgError(f"more than {MAX_RANGE} values are not allowed")
    out = []
    v = start
    while (step > 0 and v < limit) or (step < 0 and v > limit):
        out.append(v)
        v += step
    return out


@fn("reverselist", P("list"))
def _reverselist(v: Any) -> list[Any]:
    return list(reversed(_list(v, 0)))


@fn("slice", P("list"), P("start_index", N), P("end_index", N))
def _slice(v: Any, start: Decimal, end: Decimal) -> list[Any]:
    items = _list(v, 0)
    s, e = integer(start, 1), integer(end, 2)
    if s < 0:
        raise ArgError("must not be less than zero", 1)
    if e > len(items):
        raise ArgError("must not be greater than the length of the list", 2)
    if s > e:
        raise ArgError("must not be greater than end index", 1)
    return items[s:e]


@fn("sort", P("list", LS))
def _sort(v: list[str]) -> list[str]:
    if any(x is None for x in v):
        raise ArgError("given list element is null", 0)
    return sorted(v)


@fn("chunklist", P("list"), P("size", N))
def _chunklist(v: Any, size: Decimal) -> list[Any]:
    items = _list(v, 0)
    n = integer(size, 1, "size")
    if n < 0:
        raise ArgError("the size argument must be positive", 1)
    if n == 0:
        return [items]
    return [items[i : i + n] for i in range(0, len(items), n)]


@fn("coalesce", variadic=P("vals", None, True))
def _coalesce(*vals: Any) -> Any:
    for v in vals:
        if v is None or v == "":
            continue
        return v
    raise ArgError("no non-null arguments")


@fn("coalescelist", variadic=P("vals"))
def _coalescelist(*vals: Any) -> Any:
    for i, v in enumerate(vals):
        if _list(v, i):
            return v
    raise ArgError("no non-null arguments")


def _sets(args: tuple[Any, ...]) -> list[list[Any]]:
    return [V.set_of(_list(a, i)) for i, a in enumerate(args)]


def _in(item: Any, items: list[Any]) -> bool:
    return any(V.equal(item, o) for o in items)


@fn("setunion", P("first_set"), variadic=P("other_sets"))
def _setunion(*sets: Any) -> list[Any]:
    return V.set_of([i for s in _sets(sets) for i in s])


@fn("setintersection", P("first_set"), variadic=P("other_sets"))
def _setintersection(*sets: Any) -> list[Any]:
    all_sets = _sets(sets)
    return [i for i in all_sets[0] if all(_in(i, s) for s in all_sets[1:])]


@fn("setsubtract", P("a"), P("b"))
def _setsubtract(a: Any, b: Any) -> list[Any]:
    sa, sb = _sets((a, b))
    return [i for i in sa if not _in(i, sb)]


@fn("setsymmetricdifference", P("first_set"), variadic=P("other_sets"))
def _setsymdiff(*sets: Any) -> list[Any]:
    out: list[Any] = []
    for s in _sets(sets):
        out = [i for i in out if not _in(i, s)] + [i for i in s if not _in(i, out)]
    return V.set_of(out)


@fn("sethaselement", P("set"), P("elem", None, True))
def _sethaselement(s: Any, elem: Any) -> bool:
    return _in(elem, _list(s, 0))


@fn("setproduct", variadic=P("sets"))
def _setproduct(*sets: Any) -> list[Any]:
    import itertools

    lists = [_list(s, i) for i, s in enumerate(sets)]
    total = 1
    for lst in lists:
        total *= len(lst)
    if total > MAX_RANGE:
        raise ArgError(f"the product has more than {MAX_RANGE} elements")
    return [list(p) for p in itertools.product(*lists)]


@fn("jsonencode", P("val", None, True))
def _jsonencode(v: Any) -> str:
    return V.json_encode(v)


@fn("jsondecode", P("str", S))
def _jsondecode(s: str) -> Any:
    try:
        return V.json_decode(s)
    except V.ConversionError as exc:
        raise ArgError(str(exc), 0) from None


@fn("csvdecode", P("str", S))
def _csvdecode(s: str) -> list[dict[str, Any]]:
    rows = list(csv.reader(io.StringIO(s)))
    if not rows:
        raise ArgError("missing header line")
    header, body = rows[0], rows[1:]
    out = []
    for n, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ArgError(f"record on line {n}: wrong number of fields")
        out.append(V.obj(dict(zip(header, row, strict=True))))
    return out
