"""Evaluate merged HCL/JSON bodies into targets and groups, as buildx's hclparser.Parse does.

Variables, global attributes and user functions resolve lazily with cycle detection; target
and group blocks expand their matrix, take their names, and evaluate attribute by attribute
so that `target.other.attr` references work in any order.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bale.frontends.bake import buildflags as bf
from bale.frontends.bake import values as V
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
    TupleCons,
    Variable,
)
from bale.frontends.bake.target import ATTRIBUTES, DecodeError, Group, Target, decode, to_value
from bale.frontends.bake.typeexpr import is_null_literal, type_of

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
class Instance:
    """One target or group produced by a block (one per matrix combination)."""

    block: Block
    scope: Scope
    name: str
    values: dict[str, Any] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)


@dataclass
class Parsed:
    items: list[tuple[str, Target | Group]]
    renamed: dict[str, list[str]]
    variables: list[VariableInfo]


class UserFunction:
    def __init__(
        self, cfg: Config, name: str, params: list[str], variadic: str | None, result: Expr
    ) -> None:
        self.cfg, self.name, self.params, self.variadic, self.result = (
            cfg,
            name,
            params,
            variadic,
            result,
        )

    def call(self, ev: Evaluator, args: list[Any], rng: Range) -> Any:
        if len(args) < len(self.params):
            raise EvalError(
                "Not enough function arguments",
                f'Function "{self.name}" expects {len(self.params)} argument(s). Missing value for "{self.params[len(args)]}".',
                rng,
            )
        if len(args) > len(self.params) and self.variadic is None:
            raise EvalError(
                "Too many function arguments",
                f'Function "{self.name}" expects only {len(self.params)} argument(s).',
                rng,
            )
        names: dict[str, Any] = dict(zip(self.params, args, strict=False))
        if self.variadic is not None:
            names[self.variadic] = list(args[len(self.params) :])
        return ev.value(self.result, Scope(names))


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
            spec = _attr(var.body, "default")
            default = spec.expr if spec is not None else None
            type_attr = _attr(var.body, "type")
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
            return self._from_env(name, env, is_json, typ, typed, has_default, value)
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

    def _from_env(
        self,
        name: str,
        env: str,
        is_json: bool,
        typ: V.Type,
        typed: bool,
        has_default: bool,
        default: Any,
    ) -> Any:
        if typed and is_json:
            try:
                return V.convert(V.json_decode(env), typ)
            except V.ConversionError as exc:
                raise V.ConversionError(
                    f"failed to convert variable {name} from JSON: {exc}"
                ) from None
        if typ.kind in ("list", "set", "tuple", "map"):
            try:
                return _from_csv(name, env, typ)
            except V.ConversionError as exc:
                raise V.ConversionError(
                    f"failed to convert variable {name} from CSV: {exc}"
                ) from None
        if typed and typ.is_primitive():
            return _primitive(name, env, typ)
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
        return _primitive(name, env, kind)

    # Functions ------------------------------------------------------------------

    def user_function(self, name: str) -> UserFunction | None:
        if name in self.user_funcs:
            return self.user_funcs[name]
        blk = self.funcs.get(name)
        if blk is None:
            return None
        return self._define(name, blk)

    def _define(self, name: str, blk: Block) -> UserFunction:
        params_attr = _attr(blk.body, "params")
        result = _attr(blk.body, "result")
        for a in blk.body.attributes:
            if a.name not in ("params", "variadic_params", "result"):
                raise EvalError(
                    "Unsupported argument",
                    f'An argument named "{a.name}" is not expected here.',
                    a.name_rng,
                )
        if result is None:
            raise EvalError(
                "Invalid function", f"empty result not allowed for {name}", blk.label_rngs[0]
            )
        if params_attr is None:
            raise EvalError(
                "Invalid function", f"empty params not allowed for {name}", blk.label_rngs[0]
            )
        if not isinstance(params_attr.expr, TupleCons):
            raise EvalError(
                "Invalid param element",
                "Each parameter name must be an identifier.",
                params_attr.expr.rng,
            )
        params = [_keyword(e) for e in params_attr.expr.items]
        variadic_attr = _attr(blk.body, "variadic_params")
        variadic = _keyword(variadic_attr.expr) if variadic_attr is not None else None
        fn = UserFunction(self, name, params, variadic, result.expr)
        self.user_funcs[name] = fn
        return fn

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
            self._define(name, blk)
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
        desc_attr = _attr(blk.body, "description")
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
                cond_attr = _attr(rule.body, "condition")
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
                    msg_attr = _attr(rule.body, "error_message")
                    msg = self.ev.value(msg_attr.expr) if msg_attr else None
                    text = (
                        V.to_string(msg)
                        if msg is not None
                        else "This check failed, but has an invalid error message."
                    )
                    raise EvalError("Validation failed", text, rng)

    def _instances(self, blk: Block) -> list[Instance]:
        matrix = _attr(blk.body, "matrix")
        name_attr = _attr(blk.body, "name")
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
        node = _attr(inst.block.body, attr)
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
            if _attr(body, "targets") is None:
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
            node = _attr(body, name)
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


class BlockNamespace:
    """`target` / `group` as a value: blocks are looked up (and evaluated) on access."""

    def __init__(self, cfg: Config, kind: str) -> None:
        self.cfg, self.kind = cfg, kind

    def get(self, name: str, rng: Range) -> Any:
        insts = self.cfg.instances[self.kind].get(name)
        if not insts:
            raise EvalError(
                "Unsupported attribute",
                f'This object does not have an attribute named "{name}".',
                rng,
            )
        return BlockRef(self.cfg, insts)

    def materialize(self) -> Any:
        return V.obj(
            {
                n: BlockRef(self.cfg, i).materialize()
                for n, i in self.cfg.instances[self.kind].items()
            }
        )


class BlockRef:
    def __init__(self, cfg: Config, insts: list[Instance]) -> None:
        self.cfg, self.insts = cfg, insts

    def attrs(self) -> tuple[str, ...]:
        return (
            ("name", *ATTRIBUTES)
            if self.insts[0].block.type == "target"
            else ("name", "description", "targets")
        )

    def get(self, attr: str, rng: Range) -> Any:
        if attr not in self.attrs():
            raise EvalError(
                "Unsupported attribute",
                f'This object does not have an attribute named "{attr}".',
                rng,
            )
        if attr == "name":
            return self.insts[-1].name
        chosen = self.insts[-1]
        for inst in self.insts:
            if _attr(inst.block.body, attr) is not None:
                chosen = inst
        value = self.cfg.attribute(chosen, attr, rng)
        if chosen.block.type == "target":
            probe = Target(chosen.name)
            if value is not None:
                probe.set(attr, value)
            return to_value(probe, attr)
        return list(value) if isinstance(value, list) else value

    def materialize(self) -> Any:
        return V.obj({a: self.get(a, self.insts[-1].block.rng) for a in self.attrs()})


def _attr(body: Body, name: str) -> Attribute | None:
    found = None
    for a in body.attributes:
        if a.name == name:
            found = a
    return found


def _keyword(expr: Expr) -> str:
    if isinstance(expr, Variable):
        return expr.name
    if (
        isinstance(expr, Template)
        and len(expr.parts) == 1
        and isinstance(expr.parts[0], str)
        and expr.parts[0].isidentifier()
    ):
        return expr.parts[0]
    raise EvalError("Invalid param element", "Each parameter name must be an identifier.", expr.rng)


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


def _primitive(name: str, text: str, t: V.Type) -> Any:
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


def _from_csv(name: str, text: str, t: V.Type) -> Any:
    try:
        fields = bf.csv_fields(text)
    except bf.FlagError as exc:
        raise V.ConversionError(f"failed to parse {text} as CSV: {exc}") from None
    if t.kind in ("list", "set"):
        assert t.elem is not None
        if not t.elem.is_primitive():
            raise V.ConversionError(f"unsupported type {t.friendly()} for CSV specification")
        try:
            items = [_primitive(name, f, t.elem) for f in fields]
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
                out.append(_primitive(name, f, et))
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
            m[kv[0]] = _primitive(name, kv[1], t.elem)
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
