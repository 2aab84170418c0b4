"""The solve loop without root: dedupe across platforms, the jobs limit, failure and
cancellation, through the real builder with a fake executor."""

from __future__ import annotations

import threading

import pytest
from unithelp import Project, files_of, stop_running_hook

import bale.builder.executor.process as process
from bale.builder.solver import Solver
from bale.errors import StepError

TWO = ("linux/amd64", "linux/arm64")


def test_a_copy_from_scratch_runs_once_for_two_platforms(project: Project) -> None:
    project.write("a.txt", "A")
    built = project.build("FROM scratch\nCOPY a.txt /a\n", TWO)
    starts = [e for e in built.sink.of("start") if "COPY" in e.name]
    assert len(starts) == 1
    assert built.layers(0) == built.layers(1)


def test_a_run_runs_once_per_platform_with_that_platform(project: Project) -> None:
    built = project.build("FROM scratch\nRUN write /p x\n", TWO)
    assert sorted(str(s.platform) for s in built.executor.specs) == list(TWO)


def test_identical_stages_of_one_platform_run_once(project: Project) -> None:
    dockerfile = (
        "FROM scratch AS a\nRUN write /f one\n"
        "FROM scratch AS b\nRUN write /f one\n"
        "FROM scratch\nCOPY --from=a /f /a\nCOPY --from=b /f /b\n"
    )
    built = project.build(dockerfile)
    assert built.executor.commands() == ["write /f one"]
    files = files_of(project, built)
    assert files["a"].data == files["b"].data == b"one"


def test_jobs_1_runs_one_step_at_a_time(project: Project) -> None:
    built = project.build(
        "FROM scratch AS a\nRUN write /a 1\nFROM scratch AS b\nRUN write /b 2\n"
        "FROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
        jobs=1,
    )
    assert len(built.executor.specs) == 2
    assert built.executor.peak == 1


def test_independent_steps_run_at_once_up_to_jobs(project: Project) -> None:
    built = project.build("FROM scratch\nRUN meet 2\n", TWO, jobs=2)
    assert built.executor.peak == 2


def test_steps_wait_for_their_inputs(project: Project) -> None:
    dockerfile = "FROM scratch\nRUN write /one 1\nRUN write /two 2\nRUN write /three 3\n"
    built = project.build(dockerfile, jobs=4)
    assert built.executor.commands() == ["write /one 1", "write /two 2", "write /three 3"]
    assert built.executor.peak == 1


def test_a_failed_step_is_reported_once_with_its_exit_code(project: Project) -> None:
    with pytest.raises(StepError) as caught:
        project.build("FROM scratch\nRUN exit 3\n", TWO, jobs=1)
    assert caught.value.exit_code == 3
    assert "exit code: 3" in str(caught.value)
    assert len(project.executor.specs) == 1  # the other platform's step never started
    assert len(project.last_sink.of("error")) == 1


def test_a_failure_cancels_the_running_steps(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = project.executor
    monkeypatch.setattr(process, "stop_running", stop_running_hook(ex))
    with pytest.raises(StepError) as caught:
        project.build(
            "FROM scratch AS slow\nRUN meet 2 && hold\nFROM scratch AS bad\nRUN meet 2 && exit 5\n"
            "FROM scratch\nCOPY --from=slow / /s\nCOPY --from=bad / /b\n",
            jobs=2,
        )
    # The build reports the first failure, once; the step it stopped is CANCELED.
    assert caught.value.exit_code == 5
    sink = project.last_sink
    assert len(sink.of("error")) == 1 and "exit 5" in sink.of("error")[0].name
    canceled = sink.of("canceled")
    assert len(canceled) == 1 and "hold" in canceled[0].name
    # Nothing after the failure ran: the final stage's copies never started.
    assert not [e for e in sink.of("start") if "COPY" in e.name]


def test_a_failed_build_caches_nothing_after_the_failure(project: Project) -> None:
    with pytest.raises(StepError):
        project.build("FROM scratch\nRUN write /a 1\nRUN exit 1\n")
    built = project.build("FROM scratch\nRUN write /a 1\nRUN write /b 2\n")
    # The step before the failure was kept; the one after it runs now.
    assert built.executor.commands() == ["write /b 2"]


def test_the_failure_names_the_dockerfile_line(project: Project) -> None:
    with pytest.raises(StepError) as caught:
        project.build("FROM scratch\nRUN write /a 1\nRUN exit 2\n")
    source = caught.value.source
    assert source is not None and source.start == 3
    assert caught.value.lines[source.start - 1] == "RUN exit 2"


# The generic solver, directly.


def test_solver_gives_each_job_its_inputs_results() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a", "b"]}
    out = Solver[str, str](2).run(deps, lambda k, done: k + "".join(done[d] for d in deps[k]))
    assert out == {"a": "a", "b": "ba", "c": "caba"}


def test_solver_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        Solver[str, int](2).run({"a": ["b"], "b": ["a"]}, lambda k, d: 0)


def test_solver_refuses_an_unknown_dependency() -> None:
    with pytest.raises(KeyError, match="unknown"):
        Solver[str, int](2).run({"a": ["zz"]}, lambda k, d: 0)


def test_solver_reraises_the_first_error_and_starts_nothing_after_it() -> None:
    started: list[str] = []

    def job(k: str, done: dict[str, int]) -> int:
        started.append(k)
        if k == "a":
            raise RuntimeError("a broke")
        return 1

    with pytest.raises(RuntimeError, match="a broke"):
        Solver[str, int](1).run({"a": [], "b": ["a"], "c": ["b"]}, job)
    assert started == ["a"]


def test_solver_waits_for_running_jobs_before_raising() -> None:
    finished = threading.Event()
    gate = threading.Event()

    def job(k: str, done: dict[str, int]) -> int:
        if k == "slow":
            gate.wait(10)
            finished.set()
            return 1
        gate.set()
        raise RuntimeError("fast broke")

    solver = Solver[str, int](2)
    with pytest.raises(RuntimeError):
        solver.run({"slow": [], "fast": []}, job)
    assert finished.is_set()
    assert solver.cancel_event.is_set()


def test_solver_never_runs_more_than_jobs_at_once() -> None:
    lock = threading.Lock()
    running = [0, 0]

    def job(k: int, done: dict[int, int]) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        threading.Event().wait(0.01)
        with lock:
            running[0] -= 1
        return k

    Solver[int, int](3).run({i: [] for i in range(12)}, job)
    assert running[1] <= 3


def test_solver_with_zero_jobs_still_runs_one() -> None:
    assert Solver[str, int](0).run({"a": []}, lambda k, d: 7) == {"a": 7}
