"""Which node builds which platform: native first, balanced, emulation only when no node
serves a platform natively (said in the progress), or refused up front in strict mode.

Pure: the nodes' capabilities come in, a plan comes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bale.errors import FailedPrecondition
from bale.oci.platform import Platform


@dataclass(frozen=True)
class Capability:
    """What a node can build: natively (declared, else detected on it) and under emulation."""

    node: str
    native: tuple[Platform, ...]
    emulated: tuple[Platform, ...] = ()


@dataclass(frozen=True)
class Assignment:
    node: str
    platforms: tuple[Platform, ...]
    emulated: tuple[Platform, ...] = ()  # the subset no node serves natively


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...]
    warnings: tuple[str, ...] = ()


def plan(
    wanted: Sequence[Platform],
    nodes: Sequence[Capability],
    *,
    strict: bool = False,
    busy: Mapping[str, int] | None = None,
) -> Plan:
    """Each platform goes to the least-loaded node serving it natively, in node order on a
    tie; otherwise to the least-loaded node that can emulate it (with a warning), unless
    `strict`, which refuses the whole build before any work. `busy`: platforms each node
    builds already for other builds of the same run (bake's other targets)."""
    load: dict[str, list[Platform]] = {n.node: [] for n in nodes}
    before = busy or {}
    emulated: dict[str, list[Platform]] = {n.node: [] for n in nodes}
    warnings: list[str] = []
    missing: list[Platform] = []
    for platform in wanted:
        native = [n for n in nodes if platform in n.native]
        if native:
            best = min(native, key=lambda n: before.get(n.node, 0) + len(load[n.node]))
            load[best.node].append(platform)
            continue
        if strict:
            missing.append(platform)
            continue
        able = [n for n in nodes if platform in n.emulated]
        if not able:
            missing.append(platform)
            continue
        best = min(able, key=lambda n: before.get(n.node, 0) + len(load[n.node]))
        load[best.node].append(platform)
        emulated[best.node].append(platform)
        warnings.append(
            f"WARNING: no node serves {platform} natively: building it emulated on node "
            f"{best.node!r}"
        )
    if missing:
        names = ", ".join(str(p) for p in missing)
        served = "; ".join(f"{n.node}: {', '.join(str(p) for p in n.native) or '-'}" for n in nodes)
        if strict:
            raise FailedPrecondition(
                f"no node of the builder serves {names} natively (--strict-platforms)",
                hint=f"native platforms by node: {served}; add a node with "
                "bale builder create --append --platform, or drop --strict-platforms",
            )
        raise FailedPrecondition(
            f"no node of the builder can build {names}, natively or emulated",
            hint=f"native platforms by node: {served}; install QEMU on a node "
            "(bale emulation install) or add a node for it",
        )
    assignments = tuple(
        Assignment(n.node, tuple(load[n.node]), tuple(emulated[n.node]))
        for n in nodes
        if load[n.node]
    )
    return Plan(assignments, tuple(warnings))
