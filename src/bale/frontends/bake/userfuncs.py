"""`function` blocks: user functions with `params`, `variadic_params` and a `result`
expression evaluated in a scope of the arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bale.frontends.bake.evaluate import EvalError, Evaluator, Scope
from bale.frontends.bake.syntax import Block, Expr, Range, Template, TupleCons, Variable, body_attr

if TYPE_CHECKING:
    from bale.frontends.bake.config import Config


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


def define(cfg: Config, name: str, blk: Block) -> UserFunction:
    """A `function` block checked and made callable (kept in `cfg.user_funcs`)."""
    params_attr = body_attr(blk.body, "params")
    result = body_attr(blk.body, "result")
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
    params = [keyword(e) for e in params_attr.expr.items]
    variadic_attr = body_attr(blk.body, "variadic_params")
    variadic = keyword(variadic_attr.expr) if variadic_attr is not None else None
    fn = UserFunction(cfg, name, params, variadic, result.expr)
    cfg.user_funcs[name] = fn
    return fn


def keyword(expr: Expr) -> str:
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
