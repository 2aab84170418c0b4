"""Evaluate merged HCL/JSON bodies into targets and groups, as buildx's hclparser.Parse does.

Variables, global attributes and user functions resolve lazily with cycle detection; target
and group blocks expand their matrix, take their names, and evaluate attribute by attribute
so that `target.other.attr` references work in any order.

Beside it: `env_values` (variable values from the environment), `userfuncs` (`function`
blocks), `blockrefs` (block instances, and blocks as values in expressions).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bale.frontends.bake import values as V
from bale.frontends.bake.blockrefs import BlockNamespace, Instance
from bale.frontends.bake.env_values import from_env
from bale.frontends.bake.evaluate import EMPTY, EvalError, Evaluator, Scope, force
from bale.frontends.bake.funcs import REGISTRY
from bale.frontends.bake.syntax import (
    Attribute,
    Block,
    Body,
    Expr,
    ObjectCons,
    Range,
    Template,
    body_attr,
)
from bale.frontends.bake.target import ATTRIBUTES, DecodeError, Group, Target, decode
from bale.frontends.bake.typeexpr import is_null_literal, type_of
from bale.frontends.bake.userfuncs import UserFunction, define

# A matrix may expand one block into at most this many targets.
MAX_MATRIX = 10_000

NAME_CHARS = "[a-zA-Z0-9_-]+"
_NAME_RE = re.compile(f"^{NAME_CHARS}$")

BLOCK_TYPES = ("target", "group")


def _load_stdlib() -> None:
    from bale.frontends.bake import funcs_collections, funcs_misc  # noqa: F401  (registration)


@dataclass
class VariableInfo:
    name: str
    description: str
    type: str
    value: str | None


@dataclass
class Parsed:
    items: list[tuple[str, Target | Group]]
    renamed: dict[str, list[str]]
    variables: list[VariableInfo]


class Config:
    def __init__(
        self, bodies: list[Body], lookup: Callable[[str], str | None], builtins: dict[str, str]
    ) -> None:
        _load_stdlib()
        self.env_lookup = lookup
        self.builtins = builtins
        self.attrs: dict[str, Attribute] = {}
        self.vars: dict[str, Block] = {}
        self.funcs: dict[str, Block] = {}
        self.blocks: list[Block] = []
        reserved = set(BLOCK_TYPES) | set(builtins)
        for body in bodies:
            for attr in body.attributes:
                if attr.name not in reserved and attr.name != "function":
                    self.attrs[attr.name] = attr
            for blk in body.blocks:
                if blk.type in ("variable", "function"):
                    if len(blk.labels) != 1:
                        raise EvalError(
                            "Invalid block", f"invalid block label: {list(blk.labels)}", blk.rng
                        )
                    if blk.labels[0] in reserved:
                        continue
                    (self.vars if blk.type == "variable" else self.funcs)[blk.labels[0]] = blk
                elif blk.type in BLOCK_TYPES:
                    self.blocks.append(blk)
        self.values: dict[str, Any] = {}
        self.constraints: dict[str, V.Type] = {}
        self.progress: set[str] = set()
        self.user_funcs: dict[str, UserFunction] = {}
        self.instances: dict[str, dict[str, list[Instance]]] = {t: {} for t in BLOCK_TYPES}
        self.ev = Evaluator(REGISTRY, self, self.user_function)

    # Names ----------------------------------------------------------------------

    def lookup(self, name: str, rng: Range) -> Any:
        if name in BLOCK_TYPES:
            return BlockNamespace(self, name)
        if name in self.values:
            return self.values[name]
        if name not in self.builtins and name not in self.attrs and name not in self.vars:
            raise EvalError("Unknown variable", f'There is no variable named "{name}".', rng)
        self.resolve_value(name, rng)
        return self.values[name]

    def resolve_value(self, name: str, rng: Range | None) -> None:
        if name in self.values:
            return
        if name in self.progress:
            raise EvalError("Invalid expression", f"variable cycle not allowed for {name}", rng)
        self.progress.add(name)
        try:
            self.values[name] = self._compute(name)
        finally:
            self.progress.discard(name)

    def _compute(self, name: str) -> Any:
        if name in self.builtins:
            return self.builtins[name]
        var = self.vars.get(name)
        attr = self.attrs.get(name)
        default: Expr | None = None
        typ, typed = V.ANY, False
        if attr is not None:
            default = attr.expr
        elif var is not None:
            spec = body_attr(var.body, "default")
            default = spec.expr if spec is not None else None
            type_attr = body_attr(var.body, "type")
            if type_attr is not None and not is_null_literal(type_attr.expr):
                typ = type_of(_json_type_expr(type_attr.expr))
                typed = True
                self.constraints[name] = typ
        is_var = var is not None
        if default is None and self._override(name, False)[0] is None:
            return None if typed else ""
        value: Any = None
        has_default = default is not None
        if default is not None:
            value = self.ev.value(default)
            if typed:
                try:
                    value = V.convert(value, typ)
                except V.ConversionError as exc:
                    raise EvalError(
                        "Invalid value",
                        f"invalid type {typ.friendly()} for variable {name} default value: {exc}",
                        default.rng,
                    ) from None
        if not is_var:
            return value
        env, is_json = self._override(name, typed)
        if env is None:
            return value
        where = var.rng if var is not None else None
        try:
            return from_env(name, env, is_json, typ, typed, has_default, value)
        except V.ConversionError as exc:
            raise EvalError("Invalid value", str(exc), where) from None

    def _override(self, name: str, favor_json: bool) -> tuple[str | None, bool]:
        env = self.lookup_env(name)
        if env is None or favor_json:
            json_name = name + "_JSON"
            if json_name not in self.vars and json_name not in self.builtins:
                j = self.lookup_env(json_name)
                if j is not None:
                    return j, True
        return env, False

    def lookup_env(self, name: str) -> str | None:
        return self.env_lookup(name)

    # Functions ------------------------------------------------------------------

    def user_function(self, name: str) -> UserFunction | None:
        if name in self.user_funcs:
            return self.user_funcs[name]
        blk = self.funcs.get(name)
        if blk is None:
            return None
        return define(self, name, blk)

    # Blocks ---------------------------------------------------------------------

    def parse(self) -> Parsed:
        for name in self.builtins:
            self.resolve_value(name, None)
        variables = []
        for name in sorted(self.vars):
            self.resolve_value(name, self.vars[name].rng)
            variables.append(self._info(name))
        self._validate()
        for name, blk in self.funcs.items():
            define(self, name, blk)
        renamed: dict[str, list[str]] = {}
        for blk in self.blocks:
            if len(blk.labels) != 1:
                rng = blk.label_rngs[0] if blk.label_rngs else blk.rng
                raise EvalError("Invalid block", f"invalid block label: {list(blk.labels)}", rng)
            for inst in self._instances(blk):
                self.instances[blk.type].setdefault(inst.name, []).append(inst)
                if blk.type == "target":
                    renamed.setdefault(blk.labels[0], []).append(inst.name)
        items: list[tuple[str, Target | Group]] = []
        for blk in self.blocks:
            for inst in [
                i for insts in self.instances[blk.type].values() for i in insts if i.block is blk
            ]:
                items.append((blk.type, self._build(inst)))
        for name in self.attrs:
            self.resolve_value(name, self.attrs[name].rng)
        return Parsed(items, renamed, variables)

    def _info(self, name: str) -> VariableInfo:
        blk = self.vars[name]
        desc_attr = body_attr(blk.body, "description")
        desc = V.to_string(self.ev.value(desc_attr.expr)) if desc_attr is not None else ""
        tc = self.constraints.get(name)
        value = self.values.get(name)
        text: str | None = None
        if value is not None:
            if tc is not None:
                text = V.json_encode(value)
                if tc.kind == "string":
                    text = text.strip('"')
            elif isinstance(value, (list, dict)):
                text = V.json_encode(value)
            else:
                text = V.to_string(value)
        return VariableInfo(name, desc, tc.friendly() if tc is not None else "", text)

    def _validate(self) -> None:
        for name in sorted(self.vars):
            for rule in (b for b in self.vars[name].body.blocks if b.type == "validation"):
                cond_attr = body_attr(rule.body, "condition")
                rng = cond_attr.expr.rng if cond_attr else rule.rng
                result = self.ev.value(cond_attr.expr) if cond_attr else None
                if result is None:
                    raise EvalError(
                        "Invalid condition result",
                        "Condition expression must return either true or false, not null.",
                        rng,
                    )
                try:
                    ok = (
                        V.to_bool(result)
                        if not isinstance(result, (list, dict, Decimal))
                        else V.to_bool(None)
                    )
                except V.ConversionError:
                    raise EvalError(
                        "Invalid condition result",
                        "Invalid condition result value: a bool is required.",
                        rng,
                    ) from None
                if not ok:
                    msg_attr = body_attr(rule.body, "error_message")
                    msg = self.ev.value(msg_attr.expr) if msg_attr else None
                    text = (
                        V.to_string(msg)
                        if msg is not None
                        else "This check failed, but has an invalid error message."
                    )
                    raise EvalError("Validation failed", text, rng)

    def _instances(self, blk: Block) -> list[Instance]:
        matrix = body_attr(blk.body, "matrix")
        name_attr = body_attr(blk.body, "name")
        label = blk.labels[0]
        if blk.type == "group":
            if matrix is not None:
                raise EvalError(
                    "Invalid block", "matrix is not supported for groups", blk.label_rngs[0]
                )
            if name_attr is not None:
                raise EvalError(
                    "Invalid name", "name is not supported for groups", blk.label_rngs[0]
                )
        _check_name(label, blk.label_rngs[0])
        scopes = [EMPTY] if matrix is None else self._matrix(matrix)
        if name_attr is not None and matrix is None:
            raise EvalError("Invalid name", "name requires matrix", blk.label_rngs[0])
        out: list[Instance] = []
        seen: set[str] = set()
        for scope in scopes:
            name = label
            if name_attr is not None:
                value = self.ev.value(name_attr.expr, scope)
                try:
                    name = V.to_string(value)
                except V.ConversionError as exc:
                    raise EvalError("Invalid name", str(exc), name_attr.expr.rng) from None
                _check_name(name, name_attr.expr.rng)
            if name in seen:
                raise EvalError("Invalid name", f'duplicate name "{name}"', blk.label_rngs[0])
            seen.add(name)
            out.append(Instance(blk, scope, name))
        return out

    def _matrix(self, attr: Attribute) -> list[Scope]:
        value = self.ev.value(attr.expr)
        if not isinstance(value, dict):
            raise EvalError("Invalid block", "matrix must be a map", attr.expr.rng)
        axes: list[tuple[str, list[Any]]] = []
        if isinstance(attr.expr, ObjectCons):
            order = [force(self.ev.value(k)) for k, _ in attr.expr.items]  # definition order
            keys = [k for k in order if isinstance(k, str) and k in value] + [
                k for k in value if k not in order
            ]
        else:
            keys = list(value)
        total = 1
        for key in keys:
            vals = value[key]
            if not isinstance(vals, list):
                raise EvalError("Invalid block", "matrix values must be a list", attr.expr.rng)
            axes.append((key, vals))
            total *= max(1, len(vals))
            if total > MAX_MATRIX:
                raise EvalError(
                    "Invalid block",
                    f"matrix expands to more than {MAX_MATRIX} targets",
                    attr.expr.rng,
                )
        names = [k for k, _ in axes]
        return [
            Scope(dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(v for _, v in axes))
        ]

    def attribute(self, inst: Instance, attr: str, rng: Range | None) -> Any:
        if attr in inst.values:
            return inst.values[attr]
        if attr in inst.in_progress:
            raise EvalError(
                "Invalid expression",
                f"reference cycle not allowed for {inst.block.type}.{inst.name}.{attr}",
                rng,
            )
        node = body_attr(inst.block.body, attr)
        if node is None:
            inst.values[attr] = None
            return None
        inst.in_progress.add(attr)
        try:
            raw = self.ev.value(node.expr, inst.scope)
            try:
                decoded = (
                    decode(attr, raw) if inst.block.type == "target" else _group_attr(attr, raw)
                )
            except DecodeError as exc:
                raise EvalError(
                    "Unsuitable value type", f"Unsuitable value: {exc}", node.expr.rng
                ) from None
        finally:
            inst.in_progress.discard(attr)
        inst.values[attr] = decoded
        return decoded

    def _build(self, inst: Instance) -> Target | Group:
        body = inst.block.body
        allowed = (
            set(ATTRIBUTES) | {"name", "matrix"}
            if inst.block.type == "target"
            else {"description", "targets", "name", "matrix"}
        )
        for a in body.attributes:
            if a.name not in allowed:
                raise EvalError(
                    "Unsupported argument",
                    f'An argument named "{a.name}" is not expected here.',
                    a.name_rng,
                )
        for b in body.blocks:
            raise EvalError(
                "Unsupported block type", f'Blocks of type "{b.type}" are not expected here.', b.rng
            )
        if inst.block.type == "group":
            if body_attr(body, "targets") is None:
                raise EvalError(
                    "Missing required argument",
                    'The argument "targets" is required, but no definition was found.',
                    body.rng or inst.block.rng,
                )
            desc = self.attribute(inst, "description", None)
            return Group(inst.name, desc or "", list(self.attribute(inst, "targets", None) or []))
        t = Target(inst.name)
        for name in ATTRIBUTES:
            value = self.attribute(inst, name, None)
            if name == "description":
                t.description = value or ""
            elif value is not None:
                t.set(name, value)
            node = body_attr(body, name)
            if node is not None:
                t.ranges[name] = node.rng
        return t


def _group_attr(attr: str, raw: Any) -> Any:
    if raw is None:
        return None
    if attr == "description":
        return decode("description", raw)
    if attr == "targets":
        return decode("tags", raw)
    return None


def _json_type_expr(expr: Expr) -> Expr:
    """JSON files spell a type as a string holding the type expression."""
    if (
        isinstance(expr, Template)
        and getattr(expr, "from_json", False)
        and len(expr.parts) == 1
        and isinstance(expr.parts[0], str)
    ):
        from bale.frontends.bake.hclparse import parse_expression

        return parse_expression(expr.parts[0], expr.rng.filename, expr.rng.line, expr.rng.col + 1)
    return expr


def _check_name(name: str, rng: Range) -> None:
    if not _NAME_RE.match(name):
        raise EvalError("Invalid name", f'only "{NAME_CHARS}" are allowed', rng)
