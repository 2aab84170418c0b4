"""Running a runtime process and streaming its output lines to a ProgressSink."""

from __future__ import annotations

import os
import selectors
import subprocess
from collections.abc import Callable, Sequence

from bale.builder.executor.spec import ProgressSink

_MAX_LINE = 64 * 1024


def stream(
    argv: Sequence[str],
    progress: ProgressSink,
    *,
    on_interrupt: Callable[[subprocess.Popen[bytes]], None],
    env: dict[str, str] | None = None,
) -> int:
    """Run `argv`, send its stdout/stderr lines to `progress`, return its exit status.

    Whatever stops the wait (Ctrl-C, an exception in the sink) calls `on_interrupt` with the
    process, which must make sure nothing keeps running, and is re-raised.
    """
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    try:
        _pump(proc, progress)
        return proc.wait()
    except BaseException:
        on_interrupt(proc)
        raise
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _pump(proc: subprocess.Popen[bytes], progress: ProgressSink) -> None:
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
