"""HCL type expressions (`string`, `list(number)`, `object({a = string})`) as `values.Type`."""

from __future__ import annotations

from bale.frontends.bake import values as V
from bale.frontends.bake.evaluate import EvalError
from bale.frontends.bake.syntax import (
    Call,
    Expr,
    Literal,
    ObjectCons,
    Parens,
    Template,
    TupleCons,
    Variable,
)

_PRIMITIVES = {"string": V.STRING, "number": V.NUMBER, "bool": V.BOOL, "any": V.ANY}


def _invalid(expr: Expr, detail: str) -> EvalError:
    return EvalError("Invalid type specification", detail, expr.rng)


def type_of(expr: Expr, depth: int = 0) -> V.Type:
    if depth > 32:
        raise _invalid(expr, "Type specification nested too deeply.")
    if isinstance(expr, Parens):
        return type_of(expr.inner, depth + 1)
    if isinstance(expr, Variable):
        t = _PRIMITIVES.get(expr.name)
        if t is None:
            raise _invalid(expr, f'The keyword "{expr.name}" is not a valid type specification.')
        return t
    if isinstance(expr, Call):
        name = expr.name
        if name in ("list", "set", "map"):
            if len(expr.args) != 1:
                raise _invalid(
                    expr,
                    f"The {name} type constructor requires one argument specifying the element type.",
                )
            return V.Type(name, elem=type_of(expr.args[0], depth + 1))
        if name == "tuple":
            if len(expr.args) != 1 or not isinstance(expr.args[0], TupleCons):
                raise _invalid(
                    expr,
                    "The tuple type constructor requires one argument specifying the element types as a list.",
                )
            return V.Type("tuple", elems=tuple(type_of(e, depth + 1) for e in expr.args[0].items))
        if name == "object":
            if len(expr.args) != 1 or not isinstance(expr.args[0], ObjectCons):
                raise _invalid(
                    expr,
                    "The object type constructor requires one argument specifying the attribute types as a map.",
                )
            attrs: list[tuple[str, V.Type]] = []
            optional: set[str] = set()
            for key, val in expr.args[0].items:
                if not isinstance(key, Literal) or not isinstance(key.value, str):
                    raise _invalid(key, "Object constructor map keys must be attribute names.")
                if isinstance(val, Call) and val.name == "optional" and len(val.args) == 1:
                    optional.add(key.value)
                    val = val.args[0]
                attrs.append((key.value, type_of(val, depth + 1)))
            return V.Type("object", attrs=tuple(sorted(attrs)), optional=frozenset(optional))
        raise _invalid(expr, f'Keyword "{name}" is not a valid type constructor.')
    if isinstance(expr, Template):
        raise _invalid(
            expr,
            "A type specification is either a primitive type keyword (bool, number, string) or a "
            "complex type constructor call, like list(string). This is not a valid type specification.",
        )
    raise _invalid(expr, "This expression is not a valid type specification.")


def is_null_literal(expr: Expr) -> bool:
    return isinstance(expr, Literal) and expr.value is None
