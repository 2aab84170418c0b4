"""Runs a DAG of jobs: each as soon as its inputs are done, up to `jobs` at once.

One failure cancels what has not started and waits for what is running, then re-raises the
first error, so a failed build leaves no work in flight behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class Solver(Generic[K, R]):
    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.cancel_event = threading.Event()

    def run(
        self,
        deps: Mapping[K, Sequence[K]],
        job: Callable[[K, dict[K, R]], R],
    ) -> dict[K, R]:
        """`deps[k]` lists what k needs; `job(k, results)` runs with those results ready."""
        results: dict[K, R] = {}
        waiting = {k: set(v) for k, v in deps.items()}
        for k, needs in waiting.items():
            unknown = needs - waiting.keys()
            if unknown:
                raise KeyError(f"{k!r} depends on unknown {unknown!r}")
        running: dict[Future[R], K] = {}
        error: BaseException | None = None
        first: list[BaseException] = []
        lock = threading.Lock()

        def guarded(k: K) -> R:
            # Cancel at once, from the failing worker: a job queued behind it in the pool
            # must see the cancellation before it starts, not when this loop next wakes
            # (and the error raised is the first, not a cancelled job's done beside it).
            try:
                return job(k, results)
            except BaseException as exc:
                with lock:
                    first.append(exc)
                self.cancel_event.set()
                raise

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            try:
                while waiting or running:
                    if error is None and not self.cancel_event.is_set():
                        ready = [k for k, needs in waiting.items() if not needs - results.keys()]
                        for k in ready:
                            del waiting[k]
                            running[pool.submit(guarded, k)] = k
                    if not running:
                        if waiting and error is None and not self.cancel_event.is_set():
                            raise ValueError(f"dependency cycle among {list(waiting)!r}")
                        break
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in done:
                        k = running.pop(fut)
                        exc = fut.exception()
                        if exc is not None:
                            if error is None:
                                error = exc
                                self.cancel_event.set()
                        else:
                            results[k] = fut.result()
            except BaseException:
                self.cancel_event.set()
                for fut in running:
                    fut.cancel()
                raise
        if error is not None:
            raise first[0] if first else error
        return results
