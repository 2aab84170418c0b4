"""Which process made something that outlives a step (a snapshot, a step directory, a
mount point, a runtime container), so that what a killed build left behind can be told from
what a running one uses. A pid alone could be reused; with its start time and the boot id it
names one process."""

from __future__ import annotations

import functools
import os
from pathlib import Path


@functools.cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat_line.rsplit(")", 1)[1].split()[19]  # field 22: start time in ticks


def current() -> str:
    """This process: `boot:pid:start`."""
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{_start_time(pid)}"


def alive(token: str) -> bool:
    """Whether the process a token names is still running."""
    boot, _, rest = token.partition(":")
    pid, _, started = rest.partition(":")
    if boot != _boot_id() or not pid.isdigit():
        return False
    return _start_time(int(pid)) == started


def tag() -> str:
    """This process in a form fit for a file name: `pid.start` (this boot only)."""
    pid = os.getpid()
    return f"{pid}.{_start_time(pid)}"


def tag_alive(text: str) -> bool:
    """Whether the process a file-name tag (`pid.start`) names is still running."""
    pid, _, started = text.partition(".")
    return pid.isdigit() and bool(started) and _start_time(int(pid)) == started
