"""Progress: a stream of small events keyed by vertex; rendering is the CLI's business."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One thing that happened to a vertex.

    kind: "start", "done", "cached", "error", "canceled" (stopped because another step
    failed), "log" (a line of step output), "status" (a note such as a pulled layer),
    "warning".
    """

    kind: str
    vertex: str  # the vertex digest ("" for build-wide events)
    name: str  # what users read: "[linux/arm64 build 2/4] RUN make"
    time: float = field(default_factory=time.time)
    message: str = ""
    platform: str = ""
    emulation: str = ""  # "native" or "emulated" for steps that run a process
    duration: float | None = None
    stream: int = 0  # 1 stdout, 2 stderr for "log"
    reason: str = ""  # for "start": why the step is not a cache hit
    inputs: tuple[str, ...] = ()  # for "start", "cached" and "done": the vertices it reads
    exit_code: int | None = None  # for "error": the process's exit code, when one ran


class ProgressSink(Protocol):
    def emit(self, event: Event) -> None: ...
