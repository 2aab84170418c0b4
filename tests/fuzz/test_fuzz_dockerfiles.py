"""The Dockerfile fuzzer's short runs (`make fuzz` runs the long ones): generated and mutated
Dockerfiles end in success or an error naming the line, never a traceback or a hang.

The seed is fixed so a failure here reproduces; BALE_FUZZ_SEED runs another one."""

from __future__ import annotations

import os

import pytest

from fuzz.cli_fuzz import cli_fuzz
from fuzz.dockerfile_fuzz import fuzz, minimise, run_case

SEED = int(os.environ.get("BALE_FUZZ_SEED", "20261202"))


@pytest.mark.slow  # 2000 generated Dockerfiles: about a minute on a busy machine
def test_generated_dockerfiles_in_process() -> None:
    summary = fuzz(2000, SEED, timeout=10, minimise_budget=30)
    assert summary.ok == 2000, "\n".join(summary.findings or [])


@pytest.mark.slow
def test_generated_dockerfiles_through_the_cli() -> None:
    summary = cli_fuzz(50, SEED)
    assert not summary.findings, "\n".join(summary.findings)


def test_a_finding_is_minimised_to_what_causes_it() -> None:
    # A stand-in for a bug: any line with "boom" in it raises something other than BaleError.
    def buggy(text: str) -> None:
        if "boom" in text:
            raise KeyError("boom")

    text = "FROM scratch\nENV A=1\nRUN xx boom yy\nLABEL a=b\n"
    finding = run_case(text, run=buggy)
    assert finding is not None and finding.what == "KeyError"
    assert minimise(text, finding, run=buggy) == "boom"
