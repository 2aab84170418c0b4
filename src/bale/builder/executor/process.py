"""Running a runtime process and streaming its output lines to a StepOutput."""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence

from bale.builder.executor.spec import StepOutput

_MAX_LINE = 64 * 1024
# A killed bale takes its runtime process along (unshare's --kill-child then ends the step; a
# runc container left behind is deleted by the next bale command). setpriv sets it rather
# than a preexec_fn: forking through Python code made emulated steps hang now and then.
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
# A 386 or arm/v7 step sees the 32-bit personality (`uname -m`), as on a 32-bit machine.
_SETARCH = shutil.which("setarch")

# The runtime processes of the steps running now, with how to stop each (its on_interrupt),
# so a cancelled build can end them from another thread.
_running: dict[int, tuple[subprocess.Popen[bytes], Callable[[subprocess.Popen[bytes]], None]]] = {}
_running_lock = threading.Lock()


def stop_running() -> int:
    """Stop every step this process is running; returns how many were stopped."""
    with _running_lock:
        steps = list(_running.values())
    stopped = 0
    for proc, stop in steps:
        if proc.poll() is None:
            stop(proc)
            stopped += 1
    return stopped


def stream(
    argv: Sequence[str],
    progress: StepOutput,
    *,
    on_interrupt: Callable[[subprocess.Popen[bytes]], None],
    env: dict[str, str] | None = None,
    linux32: bool = False,
) -> int:
    """Run `argv`, send its stdout/stderr lines to `progress`, return its exit status.

    `linux32` runs it (and what it starts) with the 32-bit personality, so a 386 or arm/v7
    step sees `uname -m` as on a 32-bit machine. Whatever stops the wait (Ctrl-C, an
    exception in the sink) calls `on_interrupt` with the process, which must make sure
    nothing keeps running, and is re-raised.
    """
    personality = [_SETARCH, "linux32"] if linux32 and _SETARCH else []
    proc = subprocess.Popen(
        [*_DIE_WITH_PARENT, *personality, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    with _running_lock:
        _running[proc.pid] = (proc, on_interrupt)
    try:
        _pump(proc, progress)
        return proc.wait()
    except BaseException:
        on_interrupt(proc)
        raise
    finally:
        with _running_lock:
            _running.pop(proc.pid, None)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _pump(proc: subprocess.Popen[bytes], progress: StepOutput) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    pending: dict[int, bytes] = {1: b"", 2: b""}
    sel.register(proc.stdout, selectors.EVENT_READ, 1)
    sel.register(proc.stderr, selectors.EVENT_READ, 2)
    try:
        while sel.get_map():
            for key, _ in sel.select():
                fd_no: int = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    if pending[fd_no]:
                        progress.output(fd_no, pending[fd_no])
                        pending[fd_no] = b""
                    continue
                buf = pending[fd_no] + chunk
                *lines, rest = buf.split(b"\n")
                for line in lines:
                    progress.output(fd_no, line)
                while len(rest) > _MAX_LINE:
                    progress.output(fd_no, rest[:_MAX_LINE])
                    rest = rest[_MAX_LINE:]
                pending[fd_no] = rest
    finally:
        sel.close()
