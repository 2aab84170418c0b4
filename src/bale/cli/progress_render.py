"""Progress renderers: tty (live, rich), plain (one line per event), rawjson, quiet."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from bale.builder.progress import Event, ProgressSink

if TYPE_CHECKING:
    from rich.table import Table


class PlainRenderer:
    """BuildKit's plain layout: `#N name`, `#N <elapsed> output`, `#N DONE 0.3s`, `#N CACHED`."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._ids: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def _id(self, event: Event) -> tuple[int, bool]:
        new = event.vertex not in self._ids
        if new:
            self._ids[event.vertex] = len(self._ids) + 1
        return self._ids[event.vertex], new

    def emit(self, event: Event) -> None:
        with self._lock:
            if not event.vertex:
                if event.message:
                    self._out.write(f"{event.message}\n")
                self._out.flush()
                return
            n, new = self._id(event)
            if new:
                self._out.write(f"#{n} {event.name}\n")
            if event.kind == "start":
                self._started[event.vertex] = event.time
                if event.reason:
                    # Why it runs, in one line: what BuildKit never says (moby/buildkit#2567).
                    self._out.write(f"#{n} cache miss: {event.reason}\n")
            elif event.kind == "cached":
                self._out.write(f"#{n} CACHED\n")
            elif event.kind == "done":
                took = event.duration if event.duration is not None else 0.0
                self._out.write(f"#{n} DONE {took:.1f}s\n")
            elif event.kind == "error":
                self._out.write(f"#{n} ERROR: {event.message}\n")
            elif event.kind == "canceled":
                self._out.write(f"#{n} CANCELED\n")
            elif event.kind in ("log", "status", "warning"):
                elapsed = event.time - self._started.get(event.vertex, event.time)
                self._out.write(f"#{n} {elapsed:.3f} {event.message}\n")
            self._out.flush()


class RawJsonRenderer:
    """buildx's `--progress=rawjson`: one BuildKit SolveStatus object per line, with
    `vertexes` (digest, name, started, completed, cached, error), `logs` (base64 data),
    `statuses` and `warnings`, so tools that read buildx's stream read bale's."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._started: dict[str, str] = {}

    def emit(self, event: Event) -> None:
        at = _timestamp(event.time)
        status: dict[str, Any]
        if event.kind == "log":
            data = base64.b64encode((event.message + "\n").encode()).decode()
            log = {"vertex": event.vertex, "stream": event.stream or 1, "data": data}
            status = {"logs": [{**log, "timestamp": at}]}
        elif event.kind == "status":
            status = {
                "statuses": [
                    {
                        "id": event.message,
                        "vertex": event.vertex,
                        "name": event.message,
                        "timestamp": at,
                    }
                ]
            }
        elif event.kind == "warning" or not event.vertex:
            short = base64.b64encode(event.message.encode()).decode()
            status = {"warnings": [{"vertex": event.vertex, "level": 1, "short": short}]}
        else:
            vertex: dict[str, Any] = {"digest": event.vertex, "name": event.name}
            if event.kind == "start":
                self._started[event.vertex] = at
                vertex["started"] = at
                if event.reason:
                    vertex["reason"] = event.reason  # not in BuildKit's schema: tools skip it
            else:
                vertex["started"] = self._started.get(event.vertex, at)
                vertex["completed"] = at
                if event.kind == "cached":
                    vertex["cached"] = True
                elif event.kind == "error":
                    vertex["error"] = event.message
                elif event.kind == "canceled":
                    vertex["error"] = "context canceled"  # BuildKit's text for a cancelled step
            status = {"vertexes": [vertex]}
        line = json.dumps(status, sort_keys=True)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def _timestamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


class QuietRenderer:
    def emit(self, event: Event) -> None:
        pass


TIME_WIDTH = 7  # "1234.5s"


class TtyRenderer:
    """A live view: one row per step with its state and time; the output tail of running steps."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=out)
        self._rows: dict[str, list[str]] = {}
        self._started: dict[str, float] = {}
        self._logs: dict[str, list[str]] = {}
        self._ended: dict[str, float] = {}  # how long a failed or cancelled step ran
        self._lock = threading.Lock()
        self._t0 = time.time()
        self._closed = False
        self._failed = False
        self._live = Live(
            self._render(), console=self._console, refresh_per_second=8, transient=False
        )
        self._live.start()

    def _render(self) -> Table:
        from rich.table import Table  # only the live view pays for rich
        from rich.text import Text

        # The time column has a fixed width, so a narrow terminal cuts the step's command
        # (with an ellipsis) and never its time.
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        grid.add_column(justify="right", no_wrap=True, width=TIME_WIDTH)
        elapsed = time.time() - self._t0
        finished = sum(1 for _, state in self._rows.values() if state not in ("running", "waiting"))
        title = f"Building {elapsed:.1f}s ({finished}/{len(self._rows)})"
        if self._closed:
            title += " FINISHED" if not self._failed else " ERROR"
        grid.add_row(Text(title, style="bold"), "")
        for vertex, (name, state) in self._rows.items():
            took = ""
            if state == "running":
                took = f"{time.time() - self._started.get(vertex, time.time()):.1f}s"
            elif state.endswith("s") and state[0].isdigit():
                took, state = state, "done"
            elif state == "CACHED":
                took = "0.0s"  # as BuildKit shows a cache hit
            elif state in ("ERROR", "CANCELED"):
                took = f"{self._ended.get(vertex, 0.0):.1f}s"
            colour = {
                "running": "blue",
                "done": "green",
                "CACHED": "cyan",
                "ERROR": "red",
                "CANCELED": "yellow",
            }.get(state, "white")
            marker = f"{state} " if state in ("CACHED", "ERROR", "CANCELED") else ""
            # Text, not markup: step names hold "[linux/arm64 …]", which markup would eat.
            grid.add_row(Text(f" => {marker}{name}", style=colour), took)
            if state in ("running", "ERROR"):
                for line in self._logs.get(vertex, [])[-5:]:
                    grid.add_row(Text(f"    {line}", style="dim"), "")
        return grid

    def emit(self, event: Event) -> None:
        with self._lock:
            if not event.vertex:
                if event.message:
                    self._live.console.print(event.message, markup=False, highlight=False)
                return
            row = self._rows.setdefault(event.vertex, [event.name, "waiting"])
            if event.kind == "start":
                self._started[event.vertex] = event.time
                row[1] = "running"
            elif event.kind == "cached":
                row[1] = "CACHED"
            elif event.kind == "done":
                row[1] = f"{event.duration or 0.0:.1f}s"
            elif event.kind in ("error", "canceled"):
                row[1] = "ERROR" if event.kind == "error" else "CANCELED"
                self._ended[event.vertex] = event.time - self._started.get(event.vertex, event.time)
                self._failed = True
            elif event.kind == "log":
                self._logs.setdefault(event.vertex, []).append(event.message)
            self._live.update(self._render())

    def close(self) -> None:
        self._closed = True
        self._live.update(self._render())
        self._live.stop()


def renderer(mode: str, out: TextIO | None = None) -> ProgressSink:
    out = out or sys.stderr
    if mode == "auto":
        mode = "tty" if out.isatty() else "plain"
    if mode == "plain":
        return PlainRenderer(out)
    if mode == "rawjson":
        return RawJsonRenderer(out)
    if mode == "quiet":
        return QuietRenderer()
    if mode == "tty":
        return TtyRenderer(out)
    from bale.errors import InvalidArgument

    raise InvalidArgument(
        f"unknown --progress {mode!r}", hint="use auto, tty, plain, quiet or rawjson"
    )
