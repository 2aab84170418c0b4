"""Step execution: RunSpec in, exit code and output lines out.

Executor        the seam the builder runs RUN steps through (tests use a fake one)
SandboxExecutor the real one: runc, or unshare + chroot; natively or emulated
"""

from collections.abc import Sequence
from typing import Protocol

from bale.builder.executor.executor import SandboxExecutor
from bale.builder.executor.spec import (
    BindMount,
    CacheMount,
    CollectingOutput,
    RunMount,
    RunSpec,
    SecretMount,
    SSHMount,
    StepOutput,
    TmpfsMount,
)
from bale.mounts import Mount


class Executor(Protocol):
    def run(self, spec: RunSpec, rootfs_mounts: Sequence[Mount], output: StepOutput) -> int:
        """Run `spec` on the rootfs `rootfs_mounts` describe; return its exit status."""
        ...


__all__ = [
    "BindMount",
    "CacheMount",
    "CollectingOutput",
    "Executor",
    "RunMount",
    "RunSpec",
    "SSHMount",
    "SandboxExecutor",
    "SecretMount",
    "StepOutput",
    "TmpfsMount",
]
