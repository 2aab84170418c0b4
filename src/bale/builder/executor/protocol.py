"""The seam the builder runs RUN steps through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bale.builder.executor.spec import RunSpec, StepOutput
from bale.mounts import Mount


class Executor(Protocol):
    def run(self, spec: RunSpec, rootfs_mounts: Sequence[Mount], output: StepOutput) -> int:
        """Run `spec` on the rootfs `rootfs_mounts` describe; return its exit status."""
        ...
