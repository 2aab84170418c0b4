"""The build cache without root: hits on a second solve, why a step missed (explain),
--no-cache and --no-cache-filter."""

from __future__ import annotations

import pytest
from unithelp import Project

from bale.builder.cache import BuildCache
from bale.store.local import Store

STEPS = "FROM scratch\nCOPY a.txt /a\nRUN write /b two\n"


def _reasons(project: Project) -> dict[str, str]:
    return {e.name.split("] ", 1)[1]: e.reason for e in project.last_sink.of("start")}


def test_a_second_solve_hits_every_step_and_runs_nothing(project: Project) -> None:
    project.write("a.txt", "A")
    first = project.build(STEPS)
    second = project.build(STEPS)
    assert second.executor.specs == []
    assert len(second.sink.of("cached")) == 2 and second.sink.of("start") == []
    assert first.layers() == second.layers()


def test_the_cache_outlives_the_store_object(project: Project) -> None:
    project.write("a.txt", "A")
    project.build(STEPS)
    project.store.close()
    project.store = Store(project.store.root)
    assert project.build(STEPS).executor.specs == []


def test_first_build_says_no_earlier_build(project: Project) -> None:
    project.write("a.txt", "A")
    project.build(STEPS)
    assert set(_reasons(project).values()) == {"no earlier build of this step"}


def test_an_edited_file_misses_the_copy_and_what_follows(project: Project) -> None:
    project.write("a.txt", "A")
    project.build(STEPS)
    project.write("a.txt", "changed")
    built = project.build(STEPS)
    reasons = _reasons(project)
    assert reasons["COPY a.txt /a"] == "file a.txt changed"
    assert reasons["RUN write /b two"] == "the step before it changed"
    assert built.executor.commands() == ["write /b two"]


def test_a_touched_file_with_the_same_bytes_still_hits(project: Project) -> None:
    import os

    path = project.write("a.txt", "A")
    project.build(STEPS)
    os.utime(path, (1, 1))
    assert project.build(STEPS).executor.specs == []


def test_a_new_file_in_a_copied_directory_is_the_reason(project: Project) -> None:
    project.write("d/one", "1")
    dockerfile = "FROM scratch\nCOPY d /d\n"
    project.build(dockerfile)
    project.write("d/two", "2")
    project.build(dockerfile)
    assert _reasons(project)["COPY d /d"] == "file d/two is new"


def test_a_removed_file_is_the_reason(project: Project) -> None:
    project.write("d/one", "1")
    project.write("d/two", "2")
    dockerfile = "FROM scratch\nCOPY d /d\n"
    project.build(dockerfile)
    (project.context / "d" / "two").unlink()
    project.build(dockerfile)
    assert _reasons(project)["COPY d /d"] == "file d/two was removed"


def test_a_changed_command_is_the_reason(project: Project) -> None:
    project.build("FROM scratch\nRUN write /x 1\n")
    project.build("FROM scratch\nRUN write /x 2\n")
    assert _reasons(project) == {"RUN write /x 2": "the command changed"}


def test_a_changed_build_arg_names_the_variable(project: Project) -> None:
    dockerfile = "FROM scratch\nARG FLAVOUR\nRUN write /x 1\n"
    project.build(dockerfile, build_args={"FLAVOUR": "a"})
    again = project.build(dockerfile, build_args={"FLAVOUR": "a"})
    assert again.executor.specs == []
    project.build(dockerfile, build_args={"FLAVOUR": "b"})
    assert _reasons(project)["RUN write /x 1"] == "variable FLAVOUR changed"


def test_a_changed_env_variable_is_named(project: Project) -> None:
    project.build("FROM scratch\nENV MODE=slow\nRUN write /x 1\n")
    project.build("FROM scratch\nENV MODE=fast\nRUN write /x 1\n")
    assert _reasons(project)["RUN write /x 1"] == "variable MODE changed"


def test_a_new_env_variable_is_named(project: Project) -> None:
    project.build("FROM scratch\nENV A=1\nRUN write /x 1\n")
    project.build("FROM scratch\nENV A=1 MODE=fast\nRUN write /x 1\n")
    assert _reasons(project)["RUN write /x 1"] == "variable MODE is new"


def test_a_dropped_env_variable_is_named(project: Project) -> None:
    project.build("FROM scratch\nENV A=1 MODE=fast\nRUN write /x 1\n")
    project.build("FROM scratch\nENV A=1\nRUN write /x 1\n")
    assert _reasons(project)["RUN write /x 1"] == "variable MODE is no longer set"


def test_an_unused_build_arg_keeps_the_step_cached(project: Project) -> None:
    dockerfile = "FROM scratch\nRUN write /x 1\n"
    project.build(dockerfile, build_args={"UNUSED": "a"})
    assert project.build(dockerfile, build_args={"UNUSED": "b"}).executor.specs == []


def test_a_changed_workdir_misses_the_steps_after_it(project: Project) -> None:
    project.build("FROM scratch\nWORKDIR /one\nRUN write x 1\n")
    built = project.build("FROM scratch\nWORKDIR /two\nRUN write x 1\n")
    assert built.executor.specs[0].cwd == "/two"
    assert _reasons(project)["RUN write x 1"] == "the step before it changed"


def test_a_changed_chmod_is_the_reason(project: Project) -> None:
    project.write("a.txt", "A")
    project.build("FROM scratch\nCOPY --chmod=644 a.txt /a\n")
    project.build("FROM scratch\nCOPY --chmod=600 a.txt /a\n")
    assert _reasons(project)["COPY --chmod=600 a.txt /a"] == "--chmod changed"


def test_a_pruned_record_says_so(project: Project) -> None:
    project.build("FROM scratch\nRUN write /x 1\n")
    with project.store.meta.transaction() as db:
        db.execute("DELETE FROM build_cache")
    project.build("FROM scratch\nRUN write /x 1\n")
    assert _reasons(project)["RUN write /x 1"].startswith("the cache has no record for this key")


def test_prune_drops_every_record_and_the_step_history(project: Project) -> None:
    project.build("FROM scratch\nRUN write /x 1\nRUN write /y 2\n")
    assert BuildCache(project.store).prune() == 2
    built = project.build("FROM scratch\nRUN write /x 1\nRUN write /y 2\n")
    assert len(built.executor.specs) == 2
    assert set(_reasons(project).values()) == {"no earlier build of this step"}


def test_no_cache_runs_every_step_and_says_why(project: Project) -> None:
    project.write("a.txt", "A")
    project.build(STEPS)
    built = project.build(STEPS, no_cache=True)
    assert built.executor.commands() == ["write /b two"]
    assert set(_reasons(project).values()) == {"--no-cache"}
    assert built.sink.of("cached") == []


def test_no_cache_filter_reruns_only_the_named_stage(project: Project) -> None:
    dockerfile = (
        "FROM scratch AS deps\nRUN write /deps 1\n"
        "FROM scratch AS app\nRUN write /app 1\n"
        "FROM scratch\nCOPY --from=deps /deps /deps\nCOPY --from=app /app /app\n"
    )
    project.build(dockerfile)
    built = project.build(dockerfile, no_cache_filter=("app",))
    assert built.executor.commands() == ["write /app 1"]
    assert _reasons(project)["RUN write /app 1"] == "--no-cache"


def test_a_rebuilt_stage_with_the_same_files_keeps_its_copy_cached(project: Project) -> None:
    dockerfile = (
        "FROM scratch AS gen\nRUN write /out same\n"
        "FROM scratch\nCOPY --from=gen /out /out\nRUN write /after 1\n"
    )
    project.build(dockerfile)
    built = project.build(dockerfile, no_cache_filter=("gen",))
    # The stage ran again into the same bytes: the copy of its file and what follows hit.
    assert built.executor.commands() == ["write /out same"]
    assert any("COPY --from=gen" in e.name for e in built.sink.of("cached"))


def test_the_cache_records_the_layer_it_hit(project: Project) -> None:
    project.write("a.txt", "A")
    built = project.build("FROM scratch\nCOPY a.txt /a\n")
    step = built.result.steps[0]
    hit = BuildCache(project.store).lookup(step.key)
    assert hit is not None and hit.layer == built.layers()[0]


def test_cache_lookup_of_an_unknown_key_misses(project: Project) -> None:
    assert BuildCache(project.store).lookup("sha256:" + "0" * 64) is None


def test_steps_report_whether_they_ran(project: Project) -> None:
    project.write("a.txt", "A")
    first = project.build(STEPS)
    second = project.build(STEPS)
    assert [s.executed for s in first.result.steps] == [True, True]
    assert [s.executed for s in second.result.steps] == [False, False]
    assert [s.key for s in first.result.steps] == [s.key for s in second.result.steps]


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ("RUN write /x 1", "RUN --network=none write /x 1", "the network mode changed"),
        ("USER 1\nRUN write /x 1", "USER 2\nRUN write /x 1", "the user changed"),
        ("COPY a.txt /a", "COPY a.txt /b", "the destination changed"),
        ("COPY a.txt /a", "COPY --chown=5 a.txt /a", "--chown changed"),
    ],
)
def test_the_first_changed_field_is_the_reason(
    project: Project, before: str, after: str, reason: str
) -> None:
    project.write("a.txt", "A")
    project.build(f"FROM scratch\n{before}\n")
    project.build(f"FROM scratch\n{after}\n")
    assert list(_reasons(project).values())[-1] == reason
