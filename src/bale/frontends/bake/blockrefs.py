"""Target and group blocks as values: `target.NAME.ATTR` and `group.NAME.targets` in
expressions, each block instance evaluated attribute by attribute on first access."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bale.frontends.bake import values as V
from bale.frontends.bake.evaluate import EvalError, Scope
from bale.frontends.bake.syntax import Block, Range, body_attr
from bale.frontends.bake.target import ATTRIBUTES, Target, to_value

if TYPE_CHECKING:
    from bale.frontends.bake.config import Config


@dataclass
class Instance:
    """One target or group produced by a block (one per matrix combination)."""

    block: Block
    scope: Scope
    name: str
    values: dict[str, Any] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)


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
            if body_attr(inst.block.body, attr) is not None:
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
