"""A build record as one self-contained HTML page: a timeline per platform (steps packed
into as many lanes as ran at once, coloured by cached / executed natively / emulated /
failed, the critical path outlined), the steps with durations and miss reasons, the failing
step's log, the layers per platform, and optionally what changed since another build.

Everything is computed here; the template (sandboxed Jinja2, autoescaped, strict) only lays
it out. No script, no network: the page is a file a CI job can keep as an artifact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from bale.oci.digest import Digest

_LOG_TAIL = 1 << 20  # the failing step's log in the page: its last MiB (the record keeps all)
_MIN_WIDTH = 0.15  # % of the timeline: a 10 ms step stays visible
_NAME_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


@dataclass
class Bar:
    n: int
    name: str
    kind: str  # cached, native, emulated, error, canceled, other
    left: float  # % of the build's duration
    width: float
    duration: float
    critical: bool = False


@dataclass
class Lane:
    bars: list[Bar] = field(default_factory=list)
    end: float = -1.0


@dataclass
class PlatformView:
    platform: str
    lanes: list[Lane]
    executed: int
    cached: int
    busy: float  # seconds of steps run, summed


def _dur(step: Mapping[str, Any]) -> float:
    start, end = step.get("started"), step.get("completed")
    return max(0.0, float(end) - float(start)) if start is not None and end is not None else 0.0


def _kind(step: Mapping[str, Any]) -> str:
    status = step.get("status")
    if status == "cached":
        return "cached"
    if status == "error":
        return "error"
    if status == "canceled":
        return "canceled"
    if status == "executed":
        return "emulated" if step.get("emulation") == "emulated" else "native"
    return "other"


def critical_path(steps: list[Mapping[str, Any]]) -> set[int]:
    """The chain of steps that decided the build's end: from the step that finished last,
    back through the input that finished last, to the first step."""
    by_vertex = {s["vertex"]: s for s in steps if s.get("completed") is not None}
    if not by_vertex:
        return set()
    current: Mapping[str, Any] | None = max(by_vertex.values(), key=lambda s: s["completed"])
    path: set[int] = set()
    while current is not None and current["n"] not in path:
        path.add(int(current["n"]))
        inputs = [by_vertex[i] for i in current.get("inputs", []) if i in by_vertex]
        current = max(inputs, key=lambda s: s["completed"]) if inputs else None
    return path


def _timeline(record: Mapping[str, Any]) -> tuple[list[PlatformView], float]:
    steps = [s for s in record.get("steps", []) if s.get("status") != "resolved"]
    t0 = float(record["created"])
    total = max(float(record["completed"]) - t0, 1e-3)
    critical = critical_path(steps)
    views: dict[str, PlatformView] = {}
    for step in sorted(steps, key=lambda s: (s.get("started") or t0, s["n"])):
        if step.get("started") is None:
            continue
        platform = step.get("platform") or "(build)"
        view = views.setdefault(platform, PlatformView(platform, [], 0, 0, 0.0))
        start = float(step["started"]) - t0
        took = _dur(step)
        bar = Bar(
            int(step["n"]),
            str(step["name"]),
            _kind(step),
            round(100 * start / total, 3),
            round(max(_MIN_WIDTH, 100 * took / total), 3),
            took,
            int(step["n"]) in critical and step.get("status") != "cached",
        )
        # The first lane free at the step's start: a chain stays on one lane, steps that
        # ran at once get one each (cached steps take no time, they share).
        lane = next((la for la in view.lanes if la.end <= start + 1e-6), None)
        if lane is None:
            lane = Lane()
            view.lanes.append(lane)
        lane.bars.append(bar)
        lane.end = start + took
        if bar.kind == "cached":
            view.cached += 1
        elif bar.kind in ("native", "emulated", "error"):
            view.executed += 1
            view.busy += took
    return list(views.values()), total


def _ticks(total: float) -> list[tuple[float, str]]:
    steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
    step = next((s for s in steps if total / s <= 10), steps[-1])
    out = []
    t = 0.0
    while t <= total + 1e-9:
        out.append((round(100 * t / total, 3), _short(t)))
        t += step
    return out


def _short(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != int(seconds) else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _key(step: Mapping[str, Any]) -> tuple[str, str]:
    return (str(step.get("platform", "")), _NAME_PREFIX.sub("", str(step.get("name", ""))))


def compare(record: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, list[Any]]:
    """What changed from `other` (the earlier build) to `record`, step by step; steps are
    matched by platform and instruction."""
    before = {_key(s): s for s in other.get("steps", []) if s.get("status") != "resolved"}
    hits, misses, slower, faster, new = [], [], [], [], []
    for step in record.get("steps", []):
        if step.get("status") == "resolved":
            continue
        old = before.get(_key(step))
        row = {
            "n": step["n"],
            "platform": step.get("platform", ""),
            "name": step["name"],
            "now": _dur(step),
            "before": _dur(old) if old else 0.0,
            "reason": step.get("reason", ""),
        }
        if old is None:
            new.append(row)
            continue
        was, now = old.get("status"), step.get("status")
        if now == "cached" and was != "cached":
            hits.append(row)
        elif was == "cached" and now != "cached":
            misses.append(row)
        elif now == was == "executed":
            delta = row["now"] - row["before"]
            if delta > max(0.5, 0.1 * row["before"]):
                slower.append(row)
            elif -delta > max(0.5, 0.1 * row["before"]):
                faster.append(row)
    slower.sort(key=lambda r: r["before"] - r["now"])
    return {"hits": hits, "misses": misses, "slower": slower, "faster": faster, "new": new}


def render_report(
    record: Mapping[str, Any],
    other: Mapping[str, Any] | None,
    read_log: Callable[[Digest], bytes],
) -> str:
    """The page for `record` (and the comparison with `other`, when given)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    env.filters["dur"] = lambda s: f"{float(s):.2f}s"
    env.filters["size"] = _size
    text = resources.files("bale.exporters").joinpath("history_report.html.j2").read_text()
    platforms, total = _timeline(record)
    steps = [s for s in record.get("steps", []) if s.get("status") != "resolved"]
    failing = []
    for step in steps:
        if step.get("status") != "error":
            continue
        log = step.get("log")
        body, clipped = "", False
        if log:
            data = read_log(Digest.parse(log["digest"]))
            clipped = len(data) > _LOG_TAIL
            tail = data[-_LOG_TAIL:]
            if clipped and b"\n" in tail:
                tail = tail[tail.index(b"\n") + 1 :]  # from the first whole line
            body = tail.decode("utf-8", "replace")
        failing.append({"step": step, "log": body, "clipped": clipped})
    made = record.get("results", {}).get("step_layers", {})
    layer_sizes = {int(k): int(v) for k, v in made.items()}
    return env.from_string(text).render(
        r=record,
        title=f"{record.get('name', '')} — {record.get('status', '')}",
        started=datetime.fromtimestamp(float(record["created"]), UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        ),
        total=total,
        ticks=_ticks(total),
        busy=sum(p.busy for p in platforms),
        platforms=platforms,
        steps=steps,
        counts=_counts(steps),
        durations={int(s["n"]): _dur(s) for s in steps},
        layer_sizes=layer_sizes,
        failing=failing,
        layers=_layers(record),
        cmp=compare(record, other) if other is not None else None,
        other=other,
        critical=critical_path(steps),
    )


def _counts(steps: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    out = {"total": 0, "cached": 0, "executed": 0, "emulated": 0, "error": 0}
    for s in steps:
        out["total"] += 1
        kind = _kind(s)
        if kind == "cached":
            out["cached"] += 1
        elif kind in ("native", "emulated"):
            out["executed"] += 1
            out["emulated"] += kind == "emulated"
        elif kind == "error":
            out["error"] += 1
    return out


def _layers(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    names = {s["n"]: s["name"] for s in record.get("steps", [])}
    for p in record.get("results", {}).get("platforms", []):
        layers = [
            {
                "digest": str(la["digest"]),
                "size": int(la["size"]),
                "step": names.get(la.get("step"), "(base image)"),
            }
            for la in p.get("layers", [])
        ]
        out.append(
            {
                "platform": f"{p['target']} {p['platform']}" if p.get("target") else p["platform"],
                "layers": layers,
                "total": sum(la["size"] for la in layers),
                "biggest": max((la["size"] for la in layers), default=1) or 1,
            }
        )
    return out
