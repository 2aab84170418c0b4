"""Short runs of the kill loop and the concurrency rounds (`make fuzz` runs the long ones):
bale SIGKILLed at random moments leaves nothing the next command does not reclaim, and
builds racing prune and gc all succeed; and no secret value reaches anything bale writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzz.concurrency import rounds
from fuzz.harness import missing_fixtures
from fuzz.killloop import kill_loop
from fuzz.secrets_scan import leak_scan

pytestmark = pytest.mark.root

SEED = int(os.environ.get("BALE_FUZZ_SEED", "20261202"))


def _need_root_and_fixtures() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts, runc)")
    reason = missing_fixtures()
    if reason:
        pytest.skip(reason)


@pytest.mark.root
@pytest.mark.slow
def test_kill_loop(tmp_path: Path) -> None:
    _need_root_and_fixtures()
    summary = kill_loop(10, SEED, tmp_path)
    assert summary.kills == 10
    assert not summary.failures, "\n".join(summary.failures)


@pytest.mark.root
@pytest.mark.slow
def test_concurrent_builds_with_prune_and_gc(tmp_path: Path) -> None:
    _need_root_and_fixtures()
    summary = rounds(2, SEED, tmp_path)
    assert summary.rounds == 2 and summary.commands == 12
    assert not summary.failures, "\n".join(summary.failures)


@pytest.mark.root
def test_no_secret_value_reaches_the_store_outputs_or_progress(tmp_path: Path) -> None:
    _need_root_and_fixtures()
    summary = leak_scan(tmp_path)
    assert summary.secrets_seen_by_steps
    assert not summary.problems, "\n".join(summary.problems)
    assert not summary.leaks, "\n".join(summary.leaks)
