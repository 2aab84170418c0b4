"""The function machinery and buildx's string and number functions (go-cty stdlib names).

A `Func` declares typed parameters; arguments are converted as cty converts them, and a
mismatch is HCL's "Invalid function argument" error naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bale.frontends.bake import values as V
from bale.frontends.bake.evaluate import EvalError, Evaluator
from bale.frontends.bake.syntax import Range


class ArgError(Exception):
    """Raised by an implementation: which argument (or None) and why."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


@dataclass(frozen=True)
class Param:
    name: str
    type: V.Type | None = None  # None: any value, unconverted
    allow_null: bool = False


@dataclass(frozen=True)
class Func:
    name: str
    params: tuple[Param, ...]
    impl: Callable[..., Any]
    variadic: Param | None = None

    def call(self, ev: Evaluator, args: list[Any], rng: Range) -> Any:
        n = len(self.params)
        if len(args) < n:
            missing = self.params[len(args)].name
            raise EvalError(
                "Not enough function arguments",
                f'Function "{self.name}" expects {n} argument(s). Missing value for "{missing}".',
                rng,
            )
        if len(args) > n and self.variadic is None:
            raise EvalError(
                "Too many function arguments",
                f'Function "{self.name}" expects only {n} argument(s).',
                rng,
            )
        converted = []
        for i, arg in enumerate(args):
            param = self.params[i] if i < n else self.variadic
            assert param is not None
            converted.append(self._convert(param, arg, rng))
        try:
            return self.impl(*converted)
        except ArgError as exc:
            if exc.index is not None:
                param = self.params[exc.index] if exc.index < n else self.variadic
                assert param is not None
                raise EvalError(
                    "Invalid function argument",
                    f'Invalid value for "{param.name}" parameter: {exc.message}.',
                    rng,
                ) from None
            raise EvalError(
                "Error in function call",
                f'Call to function "{self.name}" failed: {exc.message}.',
                rng,
            ) from None
        except (V.ConversionError, ValueError, InvalidOperation, OverflowError) as exc:
            raise EvalError(
                "Error in function call", f'Call to function "{self.name}" failed: {exc}.', rng
            ) from None

    def _convert(self, param: Param, arg: Any, rng: Range) -> Any:
        if arg is None:
            if param.allow_null:
                return None
            raise EvalError(
                "Invalid function argument",
                f'Invalid value for "{param.name}" parameter: argument must not be null.',
                rng,
            )
        if param.type is None:
            return arg
        try:
            return V.convert(arg, param.type)
        except V.ConversionError as exc:
            raise EvalError(
                "Invalid function argument",
                f'Invalid value for "{param.name}" parameter: {exc}.',
                rng,
            ) from None


REGISTRY: dict[str, Func] = {}

S, N, B = V.STRING, V.NUMBER, V.BOOL
LS = V.list_of(V.STRING)


def fn(
    name: str, *params: Param, variadic: Param | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[name] = Func(name, params, impl, variadic)
        return impl

    return register


def P(name: str, t: V.Type | None = None, allow_null: bool = False) -> Param:
    return Param(name, t, allow_null)


def integer(n: Decimal, index: int, what: str = "value") -> int:
    if n != n.to_integral_value():
        raise ArgError(f"{what} must be a whole number", index)
    return int(n)


# Strings --------------------------------------------------------------------------


@fn("upper", P("str", S))
def _upper(s: str) -> str:
    return s.upper()


@fn("lower", P("str", S))
def _lower(s: str) -> str:
    return s.lower()


@fn("title", P("str", S))
def _title(s: str) -> str:
    out, prev_letter = [], False
    for ch in s:
        out.append(ch.upper() if not prev_letter else ch)
        prev_letter = ch.isalnum() or ch == "'"
    return "".join(out)


@fn("strlen", P("str", S))
def _strlen(s: str) -> Decimal:
    return Decimal(len(s))


@fn("reverse", P("str", S))
def _reverse(s: str) -> str:
    return s[::-1]


@fn("chomp", P("str", S))
def _chomp(s: str) -> str:
    while s.endswith(("\r\n", "\n", "\r")):
        s = s[:-2] if s.endswith("\r\n") else s[:-1]
    return s


@fn("trimspace", P("str", S))
def _trimspace(s: str) -> str:
    return s.strip(" \t\n\r\v\f\u0085\u00a0")


@fn("trim", P("str", S), P("cutset", S))
def _trim(s: str, cutset: str) -> str:
    return s.strip(cutset)


@fn("trimprefix", P("str", S), P("prefix", S))
def _trimprefix(s: str, prefix: str) -> str:
    return s[len(prefix) :] if prefix and s.startswith(prefix) else s


@fn("trimsuffix", P("str", S), P("suffix", S))
def _trimsuffix(s: str, suffix: str) -> str:
    return s[: -len(suffix)] if suffix and s.endswith(suffix) else s


@fn("indent", P("spaces", N), P("str", S))
def _indent(spaces: Decimal, s: str) -> str:
    pad = " " * integer(spaces, 0)
    return s.replace("\n", "\n" + pad)


@fn("replace", P("str", S), P("substr", S), P("replace", S))
def _replace(s: str, old: str, new: str) -> str:
    return s.replace(old, new)


@fn("split", P("separator", S), P("str", S))
def _split(sep: str, s: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


@fn("join", P("separator", S), variadic=P("lists", LS))
def _join(sep: str, *lists: list[str]) -> str:
    if not lists:
        raise ArgError("at least one list is required")
    items: list[str] = []
    for lst in lists:
        for item in lst:
            if item is None:
                raise ArgError("element is null")
            items.append(item)
    return sep.join(items)


@fn("substr", P("str", S), P("offset", N), P("length", N))
def _substr(s: str, offset: Decimal, length: Decimal) -> str:
    off, ln = integer(offset, 1), integer(length, 2)
    if off < 0:
        off = max(0, len(s) + off)
    if off > len(s):
        return ""
    if ln < 0:
        return s[off:]
    return s[off : off + ln]


@fn("sanitize", P("name", S))
def _sanitize(s: str) -> str:
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_-" else "_" for c in s)


@fn("basename", P("path", S))
def _basename(p: str) -> str:
    if p == "":
        return "."
    stripped = p.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


@fn("dirname", P("path", S))
def _dirname(p: str) -> str:
    import posixpath

    head = p[: p.rfind("/") + 1] if "/" in p else ""
    cleaned = posixpath.normpath(head) if head else "."
    return "/" if head and cleaned == "//" else cleaned


@fn("homedir")
def _homedir() -> str:
    import os
    import pwd

    home = os.environ.get("HOME", "")
    if home:
        return home
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/"


# Numbers --------------------------------------------------------------------------


@fn("absolute", P("num", N))
def _abs(n: Decimal) -> Decimal:
    return abs(n)


@fn("add", P("a", N), P("b", N))
def _add(a: Decimal, b: Decimal) -> Decimal:
    return a + b


@fn("subtract", P("a", N), P("b", N))
def _sub(a: Decimal, b: Decimal) -> Decimal:
    return a - b


@fn("multiply", P("a", N), P("b", N))
def _mul(a: Decimal, b: Decimal) -> Decimal:
    return a * b


@fn("divide", P("a", N), P("b", N))
def _div(a: Decimal, b: Decimal) -> Decimal:
    if b == 0:
        raise ArgError("divide by zero")
    return a / b


@fn("modulo", P("a", N), P("b", N))
def _mod(a: Decimal, b: Decimal) -> Decimal:
    if b == 0:
        raise ArgError("modulo by zero")
    return a % b


@fn("negate", P("num", N))
def _neg(n: Decimal) -> Decimal:
    return -n


@fn("ceil", P("num", N))
def _ceil(n: Decimal) -> Decimal:
    return Decimal(math.ceil(n))


@fn("floor", P("num", N))
def _floor(n: Decimal) -> Decimal:
    return Decimal(math.floor(n))


@fn("int", P("num", N))
def _int(n: Decimal) -> Decimal:
    return Decimal(int(n))


@fn("signum", P("num", N))
def _signum(n: Decimal) -> Decimal:
    return Decimal((n > 0) - (n < 0))


@fn("log", P("num", N), P("base", N))
def _log(n: Decimal, base: Decimal) -> Decimal:
    return Decimal(repr(math.log(float(n), float(base))))


@fn("pow", P("num", N), P("power", N))
def _pow(n: Decimal, p: Decimal) -> Decimal:
    if p == p.to_integral_value() and abs(p) < 4096:
        return n ** int(p)
    return Decimal(repr(math.pow(float(n), float(p))))


@fn("max", variadic=P("numbers", N))
def _max(*nums: Decimal) -> Decimal:
    if not nums:
        raise ArgError("must pass at least one number")
    return max(nums)


@fn("min", variadic=P("numbers", N))
def _min(*nums: Decimal) -> Decimal:
    if not nums:
        raise ArgError("must pass at least one number")
    return min(nums)


@fn("parseint", P("number", S), P("base", N))
def _parseint(s: str, base: Decimal) -> Decimal:
    b = integer(base, 1, "base")
    if not 2 <= b <= 62:
        raise ArgError("base must be a whole number between 2 and 62 inclusive", 1)
    try:
        return Decimal(int(s, b))
    except ValueError:
        raise ArgError(f"cannot parse {s!r} as a base {b} integer", 0) from None


# Logic and comparison -------------------------------------------------------------


@fn("and", P("a", B), P("b", B))
def _and(a: bool, b: bool) -> bool:
    return a and b


@fn("or", P("a", B), P("b", B))
def _or(a: bool, b: bool) -> bool:
    return a or b


@fn("not", P("val", B))
def _not(a: bool) -> bool:
    return not a


@fn("equal", P("a", None, True), P("b", None, True))
def _equal(a: Any, b: Any) -> bool:
    return V.equal(a, b)


@fn("notequal", P("a", None, True), P("b", None, True))
def _notequal(a: Any, b: Any) -> bool:
    return not V.equal(a, b)


@fn("greaterthan", P("a", N), P("b", N))
def _gt(a: Decimal, b: Decimal) -> bool:
    return a > b


@fn("lessthan", P("a", N), P("b", N))
def _lt(a: Decimal, b: Decimal) -> bool:
    return a < b


@fn("greaterthanorequalto", P("a", N), P("b", N))
def _ge(a: Decimal, b: Decimal) -> bool:
    return a >= b


@fn("lessthanorequalto", P("a", N), P("b", N))
def _le(a: Decimal, b: Decimal) -> bool:
    return a <= b
