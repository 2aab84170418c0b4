"""The HCL expression tree shared by the HCL and JSON readers, and the file body model.

Both readers produce `Body` values whose attributes hold `Expr` nodes, so one evaluator serves
HCL, JSON and heredoc/template strings alike. Every node carries its source `Range`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Range:
    """1-based start and end position (end column exclusive, as HCL reports it)."""

    filename: str
    line: int
    col: int
    end_line: int
    end_col: int

    def text(self) -> str:
        if self.end_line == self.line:
            return f"{self.filename}:{self.line},{self.col}-{self.end_col}"
        return f"{self.filename}:{self.line},{self.col}-{self.end_line},{self.end_col}"


class Expr:
    """Base of every expression node."""

    __slots__ = ()
    rng: Range


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    value: str | Decimal | bool | None
    rng: Range


@dataclass(frozen=True, slots=True)
class Template(Expr):
    """A string template: literal text, interpolations and directives."""

    parts: tuple[TemplatePart, ...]
    rng: Range
    from_json: bool = False  # JSON strings double as expressions where HCL wants keywords


@dataclass(frozen=True, slots=True)
class Interp:
    expr: Expr


@dataclass(frozen=True, slots=True)
class IfDirective:
    cond: Expr
    then: tuple[TemplatePart, ...]
    otherwise: tuple[TemplatePart, ...]


@dataclass(frozen=True, slots=True)
class ForDirective:
    key_var: str | None
    value_var: str
    collection: Expr
    body: tuple[TemplatePart, ...]


TemplatePart = str | Interp | IfDirective | ForDirective


@dataclass(frozen=True, slots=True)
class Variable(Expr):
    name: str
    rng: Range


@dataclass(frozen=True, slots=True)
class GetAttr(Expr):
    source: Expr
    name: str
    rng: Range


@dataclass(frozen=True, slots=True)
class Index(Expr):
    source: Expr
    key: Expr
    rng: Range


@dataclass(frozen=True, slots=True)
class Splat(Expr):
    """`a[*].b` (full) or `a.*.b` (attribute-only): `steps` apply to each element."""

    source: Expr
    steps: tuple[tuple[str, Expr | str], ...]  # ("attr", name) or ("index", expr)
    rng: Range


@dataclass(frozen=True, slots=True)
class TupleCons(Expr):
    items: tuple[Expr, ...]
    rng: Range


@dataclass(frozen=True, slots=True)
class ObjectCons(Expr):
    # A bare identifier key is a literal name; anything else is evaluated.
    items: tuple[tuple[Expr, Expr], ...]
    rng: Range


@dataclass(frozen=True, slots=True)
class Call(Expr):
    name: str
    args: tuple[Expr, ...]
    expand_final: bool
    rng: Range
    name_rng: Range


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    op: str
    operand: Expr
    rng: Range


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr
    rng: Range


@dataclass(frozen=True, slots=True)
class Conditional(Expr):
    cond: Expr
    then: Expr
    otherwise: Expr
    rng: Range


@dataclass(frozen=True, slots=True)
class ForExpr(Expr):
    key_var: str | None
    value_var: str
    collection: Expr
    key_expr: Expr | None  # None for the tuple form
    value_expr: Expr
    cond: Expr | None
    grouping: bool
    rng: Range


@dataclass(frozen=True, slots=True)
class Parens(Expr):
    inner: Expr
    rng: Range


@dataclass(frozen=True)
class Attribute:
    name: str
    expr: Expr
    rng: Range  # the whole `name = expr`
    name_rng: Range


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...]
    body: Body
    rng: Range  # the block header
    label_rngs: tuple[Range, ...]


@dataclass(frozen=True)
class Body:
    attributes: tuple[Attribute, ...] = ()
    blocks: tuple[Block, ...] = ()
    # Where to point when something is missing from the body.
    rng: Range | None = None
    # JSON bodies may repeat an attribute name across merged objects; HCL may not.
    extra: dict[str, object] = field(default_factory=dict)


def traversal_root(expr: Expr) -> tuple[str, list[str]] | None:
    """`target.foo.context` as ("target", ["foo", "context"]); None if not a plain traversal."""
    names: list[str] = []
    node = expr
    while True:
        if isinstance(node, GetAttr):
            names.append(node.name)
            node = node.source
        elif isinstance(node, Index) and isinstance(node.key, Literal):
            key = node.key.value
            if not isinstance(key, str):
                return None
            names.append(key)
            node = node.source
        elif isinstance(node, Variable):
            names.reverse()
            return node.name, names
        else:
            return None


def body_attr(body: Body, name: str) -> Attribute | None:
    """The body's attribute of that name (the last one, as merged files override)."""
    found = None
    for a in body.attributes:
        if a.name == name:
            found = a
    return found
