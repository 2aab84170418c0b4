"""Progress: a stream of small events keyed by vertex; rendering is the CLI's business."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One thing that happened to a vertex.

    kind: "start", "done", "cached", "error", "log" (a line of step output), "status"
    (a note such as a pulled layer), "warning".
    """

    kind: str
    vertex: str  # the vertex digest ("" for build-wide events)
    name: str  # what users read: "[linux/arm64 build 2/4] RUN make"
    time: float = field(default_factory=time.time)
    message: str = ""
    platform: str = ""
    emulation: str = ""  # "native", "binfmt" or "proot" for steps that run a process
    duration: float | None = None
    stream: int = 0  # 1 stdout, 2 stderr for "log"


class ProgressSink(Protocol):
    def emit(self, event: Event) -> None: ...


class NullProgress:
    def emit(self, event: Event) -> None:
        pass


class RecordingProgress:
    """Keeps every event (tests, and the metadata file's summary)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)


class Tee:
    def __init__(self, *sinks: ProgressSink) -> None:
        self._sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            sink.emit(event)
