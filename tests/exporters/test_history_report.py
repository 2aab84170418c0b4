"""The HTML report of a large synthetic record: one bar per executed step, the critical path
marked, the comparison with a second record, and how long rendering takes (printed)."""

from __future__ import annotations

import re
import time
from typing import Any

from bale.exporters.history_report import compare, critical_path, render_report

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x")


def synthetic(steps_per_platform: int = 200, cached_every: int = 0) -> dict[str, Any]:
    """A build of `steps_per_platform` chained steps per platform, some run in parallel."""
    t0 = 1_700_000_000.0
    steps: list[dict[str, Any]] = []
    n = 0
    for p, platform in enumerate(PLATFORMS):
        clock = t0 + p * 0.01
        previous = ""
        for i in range(steps_per_platform):
            n += 1
            took = 0.05 + (i % 7) * 0.03 * (3 if p else 1)
            cached = cached_every and i % cached_every == 0
            vertex = f"sha256:{n:064x}"
            steps.append(
                {
                    "n": n,
                    "vertex": vertex,
                    "platform": platform,
                    "name": f"[{platform} build {i + 1}/{steps_per_platform}] RUN make part-{i}",
                    "status": "cached" if cached else "executed",
                    "emulation": "native" if p == 0 else "emulated",
                    "started": clock,
                    "completed": clock if cached else clock + took,
                    "inputs": [previous] if previous else [],
                    "reason": "" if cached else "file src/part.c changed",
                }
            )
            previous = vertex
            clock += 0 if cached else took
    end = max(s["completed"] for s in steps)
    return {
        "id": "synthetic0000000000000000a",
        "name": "big",
        "status": "completed",
        "created": t0,
        "completed": end + 0.1,
        "request": {"platforms": list(PLATFORMS), "target": ""},
        "steps": steps,
        "warnings": [],
        "results": {},
        "error": None,
    }


def test_200_steps_on_4_platforms() -> None:
    record = synthetic()
    started = time.perf_counter()
    html = render_report(record, None, lambda d: b"")
    took = time.perf_counter() - started
    print(f"\n200 steps x 4 platforms: report rendered in {took:.3f}s ({len(html) / 1e6:.2f} MB)")
    bars = re.findall(r'class="bar (\w+) executed( critical)?"', html)
    assert len(bars) == 800
    # The slowest platform's chain decides the end: its 200 steps are the critical path.
    critical = critical_path(record["steps"])
    assert len(critical) == 200
    assert sum(1 for _, c in bars if c) == 200
    # The steps table has one row per step.
    assert len(re.findall(r'<tr class="[a-z ]+" data-step=', html)) == 800


def test_compare_lists_new_hits_and_slower_steps() -> None:
    cold, warm = synthetic(20), synthetic(20, cached_every=2)
    result = compare(warm, cold)
    assert len(result["hits"]) == 40 and not result["misses"]
    html = render_report(warm, cold, lambda d: b"")
    assert 'id="compare-hits" data-count="40"' in html
