"""Stable exit codes (documented in docs/exit-codes.md)."""

from __future__ import annotations

from bale import errors

OK = 0
ERROR = 1  # any failure of the requested operation, as buildx and docker use it
USAGE = 2  # the command line itself is wrong (argparse's convention)
INTERRUPTED = 130  # SIGINT: 128 + 2


def for_error(exc: BaseException) -> int:
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, errors.BaleError):
        return ERROR
    return ERROR
