"""BuildKit's dockerfile_mount_test.go cases that end before any step runs: flag and key
errors (testMountInvalid), `from=$x` (testMountFromError), values expanded from ARG and ENV
(testMountArg, testMountEnvAcrossStages), ids in the outline (testOutlineSecrets)."""

from __future__ import annotations

import pytest

from bale.errors import DockerfileError
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import resolve
from bale.oci.platform import Platform

AMD = Platform.parse("linux/amd64")


def mounts(text: str) -> list[list[tuple[str, str, str]]]:
    build = resolve(text, target_platform=AMD, all_stages=True)
    return [
        [(m.type, m.id, m.target) for m in step.instruction.mounts]
        for stage in sorted(build.stages, key=lambda s: s.index)
        for step in stage.steps
        if isinstance(step.instruction, ins.Run)
    ]


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (
            "RUN --mont=target=/mytmp,type=tmpfs /bin/true",
            "unknown flag: --mont (did you mean mount?)",
        ),
        (
            "RUN --mount=typ=tmpfs /bin/true",
            "unexpected key 'typ' in 'typ=tmpfs' (did you mean type?)",
        ),
        ("RUN --mount=type=tmp /bin/true", 'unsupported mount type "tmp" (did you mean tmpfs?)'),
    ],
)
def test_mount_invalid(run: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        resolve(f"\nFROM scratch\n{run}\n", target_platform=AMD)
    assert message in str(info.value)
    assert info.value.source is not None and info.value.source.start == 3


def test_mount_from_cannot_use_a_variable() -> None:
    text = (
        "\nFROM busybox as test\nRUN touch /tmp/test\n\nFROM busybox\nENV ttt=test\n"
        "RUN --mount=from=$ttt,type=cache,target=/tmp ls\n"
    )
    with pytest.raises(DockerfileError) as info:
        resolve(text, target_platform=AMD)
    assert "'from' doesn't support variable expansion, define alias stage instead" in str(
        info.value
    )


def test_mount_values_expand_args_and_env_across_stages() -> None:
    text = (
        "\nFROM scratch\nARG MNT_TYPE=cache\n"
        "RUN --mount=type=$MNT_TYPE,target=/mycache2 touch /mycache2/foo\n"
        "FROM scratch as stage1\nENV MNT_ID=mycache\nENV MNT_TYPE2=cache\n"
        "RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]\n"
        "FROM stage1\nRUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ]\n"
    )
    assert mounts(text) == [
        [("cache", "/mycache2", "/mycache2")],
        [("cache", "mycache", "/cbacba")],
        [("cache", "mycache", "/whatever")],
    ]
    with pytest.raises(DockerfileError, match='unsupported mount type "nope"'):
        resolve(
            "FROM scratch\nARG T=nope\nRUN --mount=type=$T,target=/x true\n", target_platform=AMD
        )
