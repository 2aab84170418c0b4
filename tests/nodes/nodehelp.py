"""What the node tests share: the cluster they run on and how to run bale against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sshnodes import NodeSet

PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass
class Cluster:
    nodes: NodeSet
    registry: str  # 127.0.0.1:PORT
    root: Path  # the coordinator's bale root
    base: str  # REGISTRY/base:1, amd64 and arm64

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("BALE_DEBUG", "BALE_ROOT", "BALE_BUILDER")
        }
        env["BALE_SSH_CONFIG"] = str(self.nodes.config)
        return env

    def bale(
        self, *args: str, check: bool = True, root: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "bale", "--root", str(root or self.root), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"bale {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bale", "--root", str(self.root), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
        )


def statuses(stderr: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def ran(stderr: str) -> dict[str, bool]:
    """Step name -> whether it executed (completed and not cached)."""
    out: dict[str, bool] = {}
    for status in statuses(stderr):
        for v in status.get("vertexes", []):
            if "completed" in v:
                out[v["name"]] = not v.get("cached", False)
    return out
