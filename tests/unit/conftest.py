"""Fixtures of the builder's unit tests: a project (context, store, fake executor)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from unithelp import Project

# Memory-backed when the machine has it: every layer and record the store commits is
# fsynced, which on a busy disk costs more than the whole build it belongs to.
SHM = Path("/dev/shm")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        yield Project(tmp_path)
        return
    base = Path(tempfile.mkdtemp(prefix="bale-unit-", dir=SHM))
    try:
        yield Project(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
