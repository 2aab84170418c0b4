"""The expression evaluator: HCL semantics over `syntax` nodes and `values`.

Names not bound locally are asked of a `Globals` object, which resolves variables lazily and
answers `target.NAME.ATTR` through `Namespace` values. Errors are `EvalError`s carrying the
range of the offending expression and HCL's summary and detail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any, Protocol

from bale.frontends.bake import values as V
from bale.frontends.bake.syntax import (
    Binary,
    Call,
    Conditional,
    Expr,
    ForDirective,
    ForExpr,
    GetAttr,
    IfDirective,
    Index,
    Interp,
    Literal,
    ObjectCons,
    Parens,
    Range,
    Splat,
    Template,
    TemplatePart,
    TupleCons,
    Unary,
    Variable,
)

# A for expression or template may not produce more elements than this; nor may calls nest
# deeper than MAX_CALL_DEPTH (user functions calling each other).
MAX_ELEMENTS = 1_000_000
MAX_CALL_DEPTH = 64


class EvalError(Exception):
    def __init__(self, summary: str, detail: str, rng: Range | None) -> None:
        super().__init__(f"{summary}; {detail}")
        self.summary = summary
        self.detail = detail
        self.rng = rng

    def text(self) -> str:
        where = f"{self.rng.text()}: " if self.rng else ""
        return f"{where}{self.summary}; {self.detail}"


class Namespace(Protocol):
    """A lazily evaluated object such as `target` or `target.foo`."""

    def get(self, name: str, rng: Range) -> Any: ...

    def materialize(self) -> Any: ...


class Globals(Protocol):
    def lookup(self, name: str, rng: Range) -> Any: ...


class Function(Protocol):
    def call(self, ev: Evaluator, args: list[Any], rng: Range) -> Any: ...


@dataclass
class Scope:
    names: Mapping[str, Any]
    parent: Scope | None = None

    def find(self, name: str) -> tuple[bool, Any]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return True, scope.names[name]
            scope = scope.parent
        return False, None

    def child(self, names: Mapping[str, Any]) -> Scope:
        return Scope(names, self)


EMPTY = Scope({})


def force(v: Any) -> Any:
    """Turn a lazy namespace into a plain value."""
    if hasattr(v, "materialize"):
        return v.materialize()
    return v


class Evaluator:
    def __init__(
        self,
        functions: Mapping[str, Function],
        globals_: Globals,
        user_functions: Callable[[str], Function | None] | None = None,
    ) -> None:
        self.functions = functions
        self.globals = globals_
        self.user_functions = user_functions
        self.depth = 0

    def value(self, expr: Expr, scope: Scope = EMPTY) -> Any:
        return force(self.eval(expr, scope))

    def eval(self, expr: Expr, scope: Scope) -> Any:
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Template):
            return self.template(expr, scope)
        if isinstance(expr, Variable):
            found, v = scope.find(expr.name)
            if found:
                return v
            return self.globals.lookup(expr.name, expr.rng)
        if isinstance(expr, GetAttr):
            return self.get_attr(self.eval(expr.source, scope), expr.name, expr.rng)
        if isinstance(expr, Index):
            key = self.value(expr.key, scope)
            return self.index(self.eval(expr.source, scope), key, expr.rng)
        if isinstance(expr, Parens):
            return self.eval(expr.inner, scope)
        if isinstance(expr, TupleCons):
            return [self.value(e, scope) for e in expr.items]
        if isinstance(expr, ObjectCons):
            out: dict[str, Any] = {}
            for key_expr, val_expr in expr.items:
                key = self.value(key_expr, scope)
                if key is None:
                    raise EvalError(
                        "Invalid object key",
                        "Key expression result must not be null.",
                        key_expr.rng,
                    )
                try:
                    out[V.to_string(key)] = self.value(val_expr, scope)
                except V.ConversionError:
                    raise EvalError(
                        "Incorrect key type",
                        "Can't use this value as a key: string required.",
                        key_expr.rng,
                    ) from None
            return V.obj(out)
        if isinstance(expr, Call):
            return self.call(expr, scope)
        if isinstance(expr, Unary):
            return self.unary(expr, scope)
        if isinstance(expr, Binary):
            return self.binary(expr, scope)
        if isinstance(expr, Conditional):
            cond = self.value(expr.cond, scope)
            if cond is None:
                raise EvalError(
                    "Null condition",
                    "The condition value is null. Conditions must either be true or false.",
                    expr.cond.rng,
                )
            try:
                flag = V.to_bool(cond)
            except V.ConversionError as exc:
                raise EvalError(
                    "Incorrect condition type",
                    f"The condition expression must be of type bool: {exc}.",
                    expr.cond.rng,
                ) from None
            return self.value(expr.then if flag else expr.otherwise, scope)
        if isinstance(expr, ForExpr):
            return self.for_expr(expr, scope)
        if isinstance(expr, Splat):
            return self.splat(expr, scope)
        raise EvalError(
            "Invalid expression", f"unsupported expression {type(expr).__name__}", expr.rng
        )

    # Traversal ----------------------------------------------------------------------

    def get_attr(self, source: Any, name: str, rng: Range) -> Any:
        if hasattr(source, "get") and hasattr(source, "materialize"):
            return source.get(name, rng)
        if source is None:
            raise EvalError(
                "Attempt to get attribute from null value",
                "This value is null, so it does not have any attributes.",
                rng,
            )
        if isinstance(source, dict):
            if name not in source:
                raise EvalError(
                    "Unsupported attribute",
                    f'This object does not have an attribute named "{name}".',
                    rng,
                )
            return source[name]
        if isinstance(source, list):
            raise EvalError(
                "Unsupported attribute", "This value does not have any attributes.", rng
            )
        raise EvalError(
            "Unsupported attribute",
            f"Can't access attributes on a primitive-typed value ({V.type_name(source)}).",
            rng,
        )

    def index(self, source: Any, key: Any, rng: Range) -> Any:
        if hasattr(source, "get") and hasattr(source, "materialize"):
            if not isinstance(key, str):
                raise EvalError(
                    "Invalid index",
                    "The given key does not identify an element in this collection value.",
                    rng,
                )
            return source.get(key, rng)
        if source is None:
            raise EvalError(
                "Attempt to index null value",
                "This value is null, so it does not have any indices.",
                rng,
            )
        if key is None:
            raise EvalError("Invalid index", "Can't use a null value as an indexing key.", rng)
        if isinstance(source, list):
            try:
                number = V.to_number(key)
            except V.ConversionError:
                raise EvalError(
                    "Invalid index",
                    "The given key does not identify an element in this collection value: a number is required.",
                    rng,
                ) from None
            if number != number.to_integral_value() or not 0 <= number < len(source):
                raise EvalError(
                    "Invalid index",
                    "The given key does not identify an element in this collection value.",
                    rng,
                )
            return source[int(number)]
        if isinstance(source, dict):
            try:
                skey = V.to_string(key)
            except V.ConversionError:
                raise EvalError(
                    "Invalid index",
                    "The given key does not identify an element in this collection value: string required.",
                    rng,
                ) from None
            if skey not in source:
                raise EvalError(
                    "Invalid index",
                    "The given key does not identify an element in this collection value.",
                    rng,
                )
            return source[skey]
        raise EvalError("Invalid index", "This value does not have any indices.", rng)

    def splat(self, expr: Splat, scope: Scope) -> Any:
        source = self.value(expr.source, scope)
        if source is None:
            return []
        items = source if isinstance(source, list) else [source]
        out = []
        for item in items:
            value = item
            for kind, step in expr.steps:
                if kind == "attr":
                    assert isinstance(step, str)
                    value = self.get_attr(value, step, expr.rng)
                else:
                    assert not isinstance(step, str)
                    value = self.index(value, self.value(step, scope), expr.rng)
            out.append(value)
        return out

    # Templates ----------------------------------------------------------------------

    def template(self, expr: Template, scope: Scope) -> Any:
        parts = expr.parts
        if len(parts) == 1 and isinstance(parts[0], Interp):
            # "${x}" is x itself, whatever its type (HCL's template unwrapping).
            return self.value(parts[0].expr, scope)
        out: list[str] = []
        self.render(parts, scope, out)
        return "".join(out)

    def render(self, parts: tuple[TemplatePart, ...], scope: Scope, out: list[str]) -> None:
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Interp):
                v = self.value(part.expr, scope)
                out.append(self.interpolated(v, part.expr.rng))
            elif isinstance(part, IfDirective):
                cond = self.value(part.cond, scope)
                try:
                    flag = V.to_bool(cond) if cond is not None else None
                except V.ConversionError:
                    flag = None
                if flag is None:
                    raise EvalError(
                        "Invalid 'if' directive result",
                        "The condition must be either true or false.",
                        part.cond.rng,
                    )
                self.render(part.then if flag else part.otherwise, scope, out)
            elif isinstance(part, ForDirective):
                coll = self.value(part.collection, scope)
                for key, item in self.iterate(coll, part.collection.rng):
                    names = {part.value_var: item}
                    if part.key_var:
                        names[part.key_var] = key
                    self.render(part.body, scope.child(names), out)
                    if len(out) > MAX_ELEMENTS:
                        raise EvalError(
                            "Template too large",
                            f"a template may not produce more than {MAX_ELEMENTS} parts",
                            part.collection.rng,
                        )

    def interpolated(self, v: Any, rng: Range) -> str:
        if v is None:
            raise EvalError(
                "Invalid template interpolation value",
                "The expression result is null. Cannot include a null value in a string template.",
                rng,
            )
        try:
            return V.to_string(v)
        except V.ConversionError:
            raise EvalError(
                "Invalid template interpolation value",
                f"Cannot include the given value in a string template: string required, but have {V.type_name(v)}.",
                rng,
            ) from None

    # Operators ----------------------------------------------------------------------

    def unary(self, expr: Unary, scope: Scope) -> Any:
        v = self.value(expr.operand, scope)
        if expr.op == "!":
            return not self.operand(v, V.to_bool, "a bool", expr.operand.rng, "")
        return -self.operand(v, V.to_number, "a number", expr.operand.rng, "")

    def operand(self, v: Any, conv: Callable[[Any], Any], want: str, rng: Range, side: str) -> Any:
        which = f"{side} operand" if side else "operand"
        if v is None:
            raise EvalError(
                "Invalid operand", f"Unsuitable value for {which}: argument must not be null.", rng
            )
        if isinstance(v, (list, dict)) or (want == "a number" and isinstance(v, bool)):
            raise EvalError(
                "Invalid operand", f"Unsuitable value for {which}: {want} is required.", rng
            )
        try:
            return conv(v)
        except V.ConversionError:
            raise EvalError(
                "Invalid operand", f"Unsuitable value for {which}: {want} is required.", rng
            ) from None

    def binary(self, expr: Binary, scope: Scope) -> Any:
        op = expr.op
        if op in ("&&", "||"):
            left = self.operand(
                self.value(expr.left, scope), V.to_bool, "a bool", expr.left.rng, "left"
            )
            right = self.operand(
                self.value(expr.right, scope), V.to_bool, "a bool", expr.right.rng, "right"
            )
            return (left and right) if op == "&&" else (left or right)
        lv = self.value(expr.left, scope)
        rv = self.value(expr.right, scope)
        if op == "==":
            return V.equal(lv, rv)
        if op == "!=":
            return not V.equal(lv, rv)
        a = self.operand(lv, V.to_number, "a number", expr.left.rng, "left")
        b = self.operand(rv, V.to_number, "a number", expr.right.rng, "right")
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                if b == 0:
                    raise EvalError("Error during operation", "Can't divide by zero.", expr.rng)
                return a / b
            if op == "%":
                if b == 0:
                    raise EvalError(
                        "Error during operation", "Can't compute modulo of zero.", expr.rng
                    )
                return a % b
            if op == "<":
                return a < b
            if op == ">":
                return a > b
            if op == "<=":
                return a <= b
            if op == ">=":
                return a >= b
        except (InvalidOperation, DivisionByZero, OverflowError):
            raise EvalError(
                "Error during operation", "numeric result out of range", expr.rng
            ) from None
        raise EvalError("Invalid operator", f"unknown operator {op}", expr.rng)

    # Collections --------------------------------------------------------------------

    def iterate(self, coll: Any, rng: Range) -> list[tuple[Any, Any]]:
        if coll is None:
            raise EvalError(
                "Iteration over null value",
                "A null value cannot be used as the collection in a 'for' expression.",
                rng,
            )
        if isinstance(coll, list):
            return [(Decimal(i), v) for i, v in enumerate(coll)]
        if isinstance(coll, dict):
            return list(coll.items())
        raise EvalError(
            "Iteration over non-iterable value",
            f"A value of type {V.type_name(coll)} cannot be used as the collection in a 'for' expression.",
            rng,
        )

    def for_expr(self, expr: ForExpr, scope: Scope) -> Any:
        coll = self.value(expr.collection, scope)
        results: list[Any] = []
        grouped: dict[str, Any] = {}
        for key, item in self.iterate(coll, expr.collection.rng):
            names = {expr.value_var: item}
            if expr.key_var:
                names[expr.key_var] = key
            inner = scope.child(names)
            if expr.cond is not None:
                cond = self.value(expr.cond, inner)
                try:
                    keep = V.to_bool(cond) if cond is not None else None
                except V.ConversionError:
                    keep = None
                if keep is None:
                    raise EvalError(
                        "Invalid 'for' condition",
                        "The 'if' clause value must be either true or false.",
                        expr.cond.rng,
                    )
                if not keep:
                    continue
            if expr.key_expr is None:
                results.append(self.value(expr.value_expr, inner))
                if len(results) > MAX_ELEMENTS:
                    raise EvalError(
                        "Collection too large",
                        f"a 'for' expression may not produce more than {MAX_ELEMENTS} elements",
                        expr.rng,
                    )
                continue
            k = self.value(expr.key_expr, inner)
            try:
                skey = V.to_string(k)
            except V.ConversionError:
                raise EvalError(
                    "Invalid object key",
                    "Key expression in 'for' expression must be a string.",
                    expr.key_expr.rng,
                ) from None
            v = self.value(expr.value_expr, inner)
            if expr.grouping:
                grouped.setdefault(skey, []).append(v)
            elif skey in grouped:
                raise EvalError(
                    "Duplicate object key",
                    f"Two different items produced the key \"{skey}\" in this 'for' expression. If duplicates are expected, use the ellipsis (...) after the value expression to enable grouping by key.",
                    expr.key_expr.rng,
                )
            else:
                grouped[skey] = v
        if expr.key_expr is None:
            return results
        return V.obj(grouped)

    # Calls --------------------------------------------------------------------------

    def call(self, expr: Call, scope: Scope) -> Any:
        name = expr.name
        if name in ("try", "can"):
            return self.try_can(expr, scope)
        fn = self.functions.get(name)
        if fn is None and self.user_functions is not None:
            fn = self.user_functions(name)
        if fn is None:
            raise EvalError(
                "Call to unknown function", f'There is no function named "{name}".', expr.name_rng
            )
        args = [self.value(a, scope) for a in expr.args]
        if expr.expand_final and args:
            last = args.pop()
            if not isinstance(last, list):
                raise EvalError(
                    "Invalid expanding argument value",
                    "The expanding argument (indicated by ...) must be of a tuple, list, or set type.",
                    expr.args[-1].rng,
                )
            args.extend(last)
        self.depth += 1
        try:
            if self.depth > MAX_CALL_DEPTH:
                raise EvalError(
                    "Function calls nested too deeply",
                    f'"{name}" was called more than {MAX_CALL_DEPTH} levels deep; function cycles are not allowed.',
                    expr.rng,
                )
            return fn.call(self, args, expr.rng)
        finally:
            self.depth -= 1

    def try_can(self, expr: Call, scope: Scope) -> Any:
        if expr.name == "can":
            if len(expr.args) != 1:
                raise EvalError(
                    "Invalid function arguments", 'Function "can" expects 1 argument.', expr.rng
                )
            try:
                self.value(expr.args[0], scope)
            except EvalError:
                return False
            return True
        if not expr.args:
            raise EvalError(
                "Invalid function arguments", "At least one argument is required.", expr.rng
            )
        for arg in expr.args:
            try:
                return self.value(arg, scope)
            except EvalError:
                continue
        raise EvalError(
            "Error in function call",
            'Call to function "try" failed: no expression succeeded.',
            expr.rng,
        )
