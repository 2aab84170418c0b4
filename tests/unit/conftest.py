"""Fixtures of the builder's unit tests: a project (context, store, fake executor)."""

from __future__ import annotations

from pathlib import Path

import pytest
from unithelp import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
