"""Step execution: RunSpec in, exit code and output lines out.

    Executor        the seam the builder runs RUN steps through (tests use a fake one)
    SandboxExecutor the real one: runc, or unshare + chroot; natively or emulated

Names load on first use: a fully cached build never imports the runtimes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bale.lazy import lazy_getattr

if TYPE_CHECKING:
    from bale.builder.executor.executor import SandboxExecutor
    from bale.builder.executor.protocol import Executor
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
        Ulimit,
    )

_WHERE = {
    "BindMount": "spec",
    "CacheMount": "spec",
    "CollectingOutput": "spec",
    "Executor": "protocol",
    "RunMount": "spec",
    "RunSpec": "spec",
    "SSHMount": "spec",
    "SandboxExecutor": "executor",
    "SecretMount": "spec",
    "StepOutput": "spec",
    "TmpfsMount": "spec",
    "Ulimit": "spec",
}

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
    "Ulimit",
]

__getattr__ = lazy_getattr("bale.builder.executor", _WHERE)
