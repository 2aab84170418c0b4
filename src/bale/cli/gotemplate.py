"""The part of Go's text/template that `--format` users write.

Actions hold pipelines: fields `{{.A.B}}`, function calls `{{json .X}}`, `{{index .M "k" 0}}`,
`{{len .L}}`, `{{upper .S}}`/`{{lower .S}}`, parentheses with fields after them
`{{(index .Image "linux/amd64").Architecture}}`, pipes `{{.X | json}}`, string and number
literals, `{{- -}}` trimming and `{{/* comments */}}`. Control structures (`range`, `if`,
`with`) are refused with a clear error. Docker's `table` prefix makes a header row.

Values are Python's JSON types — dicts are Go maps (printed and encoded with sorted keys),
floats are float64 — plus `GoStruct`, a Go struct whose fields keep their order and JSON names
(`{{json .}}` encodes it as encoding/json would, `omitempty` included).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bale.errors import InvalidArgument

_ACTION = re.compile(r"\{\{(-\s+)?(.*?)(\s+-)?\}\}", re.DOTALL)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
_LEXEME = re.compile(
    r"""(?P<space>\s+)
    |(?P<str>"(?:[^"\\]|\\.)*")
    |(?P<raw>`[^`]*`)
    |(?P<lpar>\()|(?P<rpar>\))|(?P<pipe>\|)
    |(?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    |(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"range", "if", "else", "end", "with", "define", "template", "block"})
_MAX_NESTING = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class GoField:
    name: str  # the Go field name templates use: .Manifest, .Architecture
    json: str  # the JSON key
    value: Any
    omitempty: bool = False
    method: bool = False  # a method, not a field: reachable in templates, absent from JSON


@dataclass(frozen=True)
class GoNil:
    """A nil slice or map of a Go struct field: prints `[]` or `map[]`, encodes as null."""

    kind: str  # "slice" or "map"


@dataclass(frozen=True)
class GoStruct:
    type: str  # for error messages: "v1.Image"
    fields: tuple[GoField, ...]

    def field(self, name: str) -> Any:
        for f in self.fields:
            if f.name == name:
                return f.value
        raise InvalidArgument(f"template: can't evaluate field {name} in type {self.type}")


Funcs = Mapping[str, Callable[..., Any]]


# -- printing and encoding as Go does --------------------------------------------------------


def _float_digits(value: float) -> Decimal:
    return Decimal(repr(value)).normalize()


def _go_float(value: float, *, json_style: bool) -> str:
    """float64 as fmt's %v (shortest %g, exponent from 1e+06) or encoding/json prints it."""
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidArgument(f"template: cannot print {value} as Go does")
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    digits = _float_digits(value)
    exponent = digits.adjusted()
    if json_style:
        exponential = abs(value) < 1e-6 or abs(value) >= 1e21
    else:  # strconv's shortest %g: an exponent from 1e+06 on (Go prints 1e+06, not 1000000)
        exponential = exponent < -4 or exponent >= 6
    if not exponential:
        return format(digits, "f")
    sign, figures, _ = digits.as_tuple()
    mantissa = str(figures[0]) + ("." + "".join(map(str, figures[1:])) if len(figures) > 1 else "")
    width = 1 if json_style else 2  # encoding/json turns e-07 into e-7
    exp_sign = "-" if exponent < 0 else "+"
    return f"{'-' if sign else ''}{mantissa}e{exp_sign}{abs(exponent):0{width}d}"


def _go_text(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def go_print(value: Any) -> str:
    """A value as Go's fmt prints it in a template."""
    if value is None:
        return "<no value>"
    if isinstance(value, GoNil):
        return "[]" if value.kind == "slice" else "map[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value, json_style=False)
    if isinstance(value, str):
        return _go_text(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(_nested(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "map[" + " ".join(f"{k}:{_nested(v)}" for k, v in items) + "]"
    if isinstance(value, GoStruct):
        return "{" + " ".join(_nested(f.value) for f in value.fields if not f.method) + "}"
    return str(value)


def _nested(value: Any) -> str:
    # Inside a slice, map or struct a nil prints as <nil>, not <no value>.
    return "<nil>" if value is None else go_print(value)


def _empty(value: Any) -> bool:
    """Go's omitempty: false, 0, "", nil, and empty slices and maps (never a struct)."""
    if value is None or isinstance(value, GoNil | bool):
        return not value or isinstance(value, GoNil)
    if isinstance(value, int | float):
        return value == 0
    return isinstance(value, str | list | tuple | dict) and len(value) == 0


def go_json(value: Any, *, indent: str | None = None, escape_html: bool = False) -> str:
    """encoding/json's bytes: json.Marshal, or json.MarshalIndent(v, "", indent)."""
    out: list[str] = []

    def string(text: str) -> str:
        encoded = json.dumps(_go_text(text), ensure_ascii=False)
        encoded = encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        if escape_html:
            encoded = encoded.replace("<", "\\u003c").replace(">", "\\u003e")
            encoded = encoded.replace("&", "\\u0026")
        return encoded

    def emit(v: Any, level: int) -> None:
        if v is None or isinstance(v, GoNil):
            out.append("null")
        elif isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, int):
            out.append(str(v))
        elif isinstance(v, float):
            out.append(_go_float(v, json_style=True))
        elif isinstance(v, str):
            out.append(string(v))
        elif isinstance(v, GoStruct):
            members = [
                (f.json, f.value)
                for f in v.fields
                if not f.method and not (f.omitempty and _empty(f.value))
            ]
            container(members, "{", "}", level)
        elif isinstance(v, dict):
            container([(str(k), v[k]) for k in sorted(v)], "{", "}", level)
        elif isinstance(v, list | tuple):
            container([(None, x) for x in v], "[", "]", level)
        else:
            raise InvalidArgument(f"template: cannot encode a {type(v).__name__} as JSON")

    def container(
        items: Sequence[tuple[str | None, Any]], start: str, end: str, level: int
    ) -> None:
        if not items:
            out.append(start + end)
            return
        out.append(start)
        for i, (key, item) in enumerate(items):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            if key is not None:
                out.append(string(key) + (": " if indent is not None else ":"))
            emit(item, level + 1)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append(end)

    emit(value, 0)
    return "".join(out)


# -- parsing and evaluating actions ---------------------------------------------------------


@dataclass(frozen=True)
class _Lexeme:
    kind: str
    text: str
    spaced: bool  # whitespace before it


def _lex(expr: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    pos, spaced = 0, True
    while pos < len(expr):
        match = _LEXEME.match(expr, pos)
        if match is None:
            raise InvalidArgument(
                f"template: unexpected {expr[pos : pos + 10]!r} in {{{{{expr}}}}}"
            )
        kind = match.lastgroup or ""
        if kind == "space":
            spaced = True
        else:
            out.append(_Lexeme(kind, match.group(), spaced))
            spaced = False
        pos = match.end()
    return out


class _Evaluator:
    def __init__(self, expr: str, data: Any, funcs: Funcs) -> None:
        self.expr = expr
        self.data = data
        self.funcs = funcs
        self.lexemes = _lex(expr)
        self.pos = 0

    def fail(self, message: str) -> InvalidArgument:
        return InvalidArgument(f"template: {message} in {{{{{self.expr}}}}}")

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.pos] if self.pos < len(self.lexemes) else None

    def run(self) -> Any:
        if not self.lexemes:
            raise self.fail("empty action")
        head = self.lexemes[0]
        if head.kind == "ident" and head.text in _KEYWORDS:
            raise InvalidArgument(
                f"template: unsupported action {{{{{self.expr}}}}}",
                hint='bale\'s --format takes {{.Field}}, {{json .Field}}, {{index .Map "key"}}; '
                "not range, if or with",
            )
        value = self.pipeline(0)
        rest = self.peek()
        if rest is not None:
            raise self.fail(f"unexpected {rest.text!r}")
        return value

    def pipeline(self, depth: int) -> Any:
        if depth > _MAX_NESTING:
            raise self.fail("parentheses nested too deeply")
        value = self.command(depth, piped=())
        while (lexeme := self.peek()) is not None and lexeme.kind == "pipe":
            self.pos += 1
            value = self.command(depth, piped=(value,))
        return value

    def command(self, depth: int, piped: tuple[Any, ...]) -> Any:
        first = self.peek()
        if first is None or first.kind in ("pipe", "rpar"):
            raise self.fail("missing command")
        if first.kind == "ident" and first.text not in ("true", "false", "nil"):
            self.pos += 1
            func = self.funcs.get(first.text)
            if func is None:
                raise self.fail(f'function "{first.text}" not defined')
            args = self.operands(depth)
            try:
                return func(*args, *piped)
            except TypeError:
                raise self.fail(f"wrong number of arguments for {first.text}") from None
        operands = self.operands(depth)
        if len(operands) != 1 or piped:
            raise self.fail("can't give an argument to a non-function")
        return operands[0]

    def operands(self, depth: int) -> list[Any]:
        values = []
        while (lexeme := self.peek()) is not None and lexeme.kind not in ("pipe", "rpar"):
            values.append(self.operand(depth))
        return values

    def operand(self, depth: int) -> Any:
        lexeme = self.lexemes[self.pos]
        self.pos += 1
        if lexeme.kind == "lpar":
            value = self.pipeline(depth + 1)
            closing = self.peek()
            if closing is None or closing.kind != "rpar":
                raise self.fail("unclosed (")
            self.pos += 1
        elif lexeme.kind == "field":
            value = self.fields(self.data, lexeme.text)
        elif lexeme.kind == "str":
            value = json.loads(lexeme.text)
        elif lexeme.kind == "raw":
            value = lexeme.text[1:-1]
        elif lexeme.kind == "num":
            value = float(lexeme.text) if any(c in lexeme.text for c in ".eE") else int(lexeme.text)
        elif lexeme.kind == "ident" and lexeme.text in ("true", "false", "nil"):
            value = {"true": True, "false": False, "nil": None}[lexeme.text]
        elif lexeme.kind == "ident":
            raise self.fail(f"{lexeme.text} is a function: put it first or in parentheses")
        else:
            raise self.fail(f"unexpected {lexeme.text!r}")
        # `(pipeline).Field`: fields right after the closing parenthesis apply to its value.
        while (after := self.peek()) is not None and after.kind == "field" and not after.spaced:
            if lexeme.kind != "lpar" or after.text == ".":
                break
            self.pos += 1
            value = self.fields(value, after.text)
        return value

    def fields(self, value: Any, path: str) -> Any:
        if path == ".":
            return value
        for name in path.lstrip(".").split("."):
            value = _field(value, name)
        return value


def _field(value: Any, name: str) -> Any:
    if isinstance(value, GoStruct):
        return value.field(name)
    if isinstance(value, dict):
        return value.get(name)
    if value is None or isinstance(value, GoNil):
        return None
    raise InvalidArgument(f"template: can't evaluate field {name} in type {_go_type(value)}")


def _go_type(value: Any) -> str:
    return {str: "string", bool: "bool", int: "int", float: "float64", list: "[]interface {}"}.get(
        type(value), type(value).__name__
    )


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, GoNil) and value.kind == "map":
            return None
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list | tuple) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(value):
                raise InvalidArgument(f"template: index of {key} out of range")
            value = value[key]
        else:
            raise InvalidArgument(f"template: can't index item of type {_go_type(value)}")
    return value


def _len(value: Any) -> int:
    if isinstance(value, GoNil):
        return 0
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise InvalidArgument(f"template: len of type {_go_type(value)}")


BASE_FUNCS: Funcs = {
    "json": lambda v: go_json(v),  # docker's: compact, HTML left as it is
    "index": _index,
    "len": _len,
    "upper": lambda v: go_print(v).upper(),
    "lower": lambda v: go_print(v).lower(),
}


def render(template: str, data: Any, *, funcs: Funcs | None = None, escapes: bool = True) -> str:
    """Execute a template. `escapes`: docker's `\\t`/`\\n` in the text become tab and newline
    (buildx passes its templates to Go as they are: escapes=False)."""
    table = {**BASE_FUNCS, **(funcs or {})}
    text = template.replace("\\t", "\t").replace("\\n", "\n") if escapes else template
    out: list[str] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        literal = text[pos : match.start()]
        if trim_next:
            literal = literal.lstrip()
        if match.group(1):
            literal = literal.rstrip()
        out.append(literal)
        expr = match.group(2).strip()
        if not (expr.startswith("/*") and expr.endswith("*/")):
            out.append(go_print(_Evaluator(expr, data, table).run()))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = text[pos:]
    out.append(tail.lstrip() if trim_next else tail)
    return "".join(out)


def table_header(template: str) -> str:
    """docker's header row for a `table ...` format: each field's name, upper-cased."""
    text = template.replace("\\t", "\t").replace("\\n", "\n")

    def name(match: re.Match[str]) -> str:
        tokens = _TOKEN.findall(match.group(2))
        field = next((t for t in tokens if t.startswith(".")), "")
        return re.sub(r"(?<!^)(?=[A-Z][a-z])", " ", field.lstrip(".").split(".")[-1]).upper()

    return _ACTION.sub(name, text)
