"""What the op executors of one solve share: the store, snapshots, the progress sink, the
executor (made on first use), and the build's inputs (contexts, secrets, ssh, compression)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bale.builder import progress as pg
from bale.builder.context import BuildContext
from bale.builder.rootfs import Rootfs
from bale.errors import BaleError, DockerfileError, NotFound, StepError
from bale.frontends.graph import Location
from bale.store.local import Lease, Store
from bale.store.snapshots import Snapshotter

if TYPE_CHECKING:
    from bale.builder.executor import Executor


@dataclass(frozen=True)
class SolveEnv:
    """The build's inputs that ops read beyond the graph."""

    # Local contexts by name: "" is the main build context, others --build-context dirs.
    contexts: Mapping[str, BuildContext]
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    ssh_socket: str = ""
    jobs: int = 2
    compression: str = "gzip"
    source_date_epoch: int | None = None
    # Names this build's steps apart from another project's in the step history.
    step_prefix: str = ""

    def context(self, name: str) -> BuildContext:
        found = self.contexts.get(name)
        if found is None:
            raise NotFound(f"no build context named {name!r}")
        return found


class Runtime:
    def __init__(
        self,
        store: Store,
        snapshots: Snapshotter,
        rootfs: Rootfs,
        sink: pg.ProgressSink,
        executor: Callable[[], Executor],
        env: SolveEnv,
        lease: Lease,
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self.rootfs = rootfs
        self.sink = sink
        self.env = env
        self.lease = lease
        self._make_executor = executor
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def with_env(self, env: SolveEnv) -> Runtime:
        """The same store, snapshots and executor for another build's inputs (one graph of
        several builds)."""
        return Runtime(
            self.store, self.snapshots, self.rootfs, self.sink, self.executor, env, self.lease
        )

    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                self._executor = self._make_executor()
            return self._executor


def located(exc: BaleError, location: Location | None) -> BaleError:
    """A failure of a step, reported at the step's Dockerfile lines (when it has some)."""
    if location is None or isinstance(exc, DockerfileError | StepError):
        return exc
    return DockerfileError(str(exc), source=location.source, lines=location.lines, hint=exc.hint)
