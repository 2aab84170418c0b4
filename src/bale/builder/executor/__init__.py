"""Step execution: RunSpec in, exit code and output lines out (see executor.py)."""

from bale.builder.executor.executor import Executor
from bale.builder.executor.spec import (
    BindMount,
    CacheMount,
    CollectingProgress,
    ProgressSink,
    RunMount,
    RunSpec,
    SecretMount,
    SSHMount,
    TmpfsMount,
)

__all__ = [
    "BindMount",
    "CacheMount",
    "CollectingProgress",
    "Executor",
    "ProgressSink",
    "RunMount",
    "RunSpec",
    "SSHMount",
    "SecretMount",
    "TmpfsMount",
]
