"""Stage resolution: args and their scopes, stage references, targets, expansion, config."""

from __future__ import annotations

import pytest

from bale.errors import DockerfileError
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import (
    DEFAULT_PATH,
    ImageBase,
    ResolvedBuild,
    ScratchBase,
    StageBase,
    resolve,
)
from bale.oci.config import RuntimeConfig
from bale.oci.platform import Platform

ARM64 = Platform.parse("linux/arm64")
AMD64 = Platform.parse("linux/amd64")
ARMV7 = Platform.parse("linux/arm/v7")


def build(text: str, **kw: object) -> ResolvedBuild:
    kw.setdefault("target_platform", ARM64)
    kw.setdefault("build_platform", AMD64)
    return resolve(text, **kw)  # type: ignore[arg-type]


def steps(text: str, **kw: object) -> list[ins.Instruction]:
    return [s.instruction for s in build(text, **kw).target.steps]


def test_automatic_platform_args() -> None:
    b = build(
        "FROM --platform=$BUILDPLATFORM golang AS b\n"
        "ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDARCH\n"
        "ARG NOTSET\n",
        target_platform=ARMV7,
    )
    arg = b.target.steps[0].instruction
    assert isinstance(arg, ins.Arg)
    assert {d.key: d.value for d in arg.args} == {
        "TARGETPLATFORM": "linux/arm/v7",
        "TARGETOS": "linux",
        "TARGETARCH": "arm",
        "TARGETVARIANT": "v7",
        "BUILDPLATFORM": "linux/amd64",
        "BUILDARCH": "amd64",
    }
    assert b.target.platform == AMD64
    notset = b.target.steps[1]
    assert notset.instruction == ins.Arg(
        source=notset.source, keyword="ARG", original="ARG NOTSET", args=(ins.ArgDef("NOTSET"),)
    )
    assert "NOTSET" not in dict(b.target.steps[-1].build_env)


def test_automatic_args_are_not_in_stage_scope_until_declared() -> None:
    text = "FROM alpine\nWORKDIR /$TARGETARCH\nARG TARGETARCH\nWORKDIR /$TARGETARCH\n"
    paths = [s.path for s in steps(text) if isinstance(s, ins.Workdir)]
    assert paths == ["/", "/arm64"]


def test_global_args_visible_to_from_only_until_redeclared() -> None:
    text = (
        "ARG VERSION=3.19\n"
        "ARG IMG=alpine:${VERSION}\n"
        "FROM $IMG\n"
        "WORKDIR /v$VERSION\n"
        "ARG VERSION\n"
        "WORKDIR /v$VERSION\n"
    )
    b = build(text)
    assert b.target.base == ImageBase("alpine:3.19")
    assert b.target.from_.image == "alpine:3.19"
    assert [s.path for s in steps(text) if isinstance(s, ins.Workdir)] == ["/v", "/v3.19"]


def test_build_args_override_defaults_everywhere() -> None:
    text = (
        "ARG VERSION=1\nFROM alpine:$VERSION\nARG VERSION\nARG OTHER=x\nENV V=$VERSION O=$OTHER\n"
    )
    b = build(text, build_args={"VERSION": "2", "OTHER": "y", "UNUSED": "z"})
    assert b.target.base == ImageBase("alpine:2")
    env = b.target.steps[-1].instruction
    assert isinstance(env, ins.Env)
    assert [(p.key, p.value) for p in env.pairs] == [("V", "2"), ("O", "y")]
    assert b.unused_build_args == ("UNUSED",)


def test_build_arg_without_declaration_is_not_visible() -> None:
    b = build("FROM alpine\nENV X=${FOO:-unset}\n", build_args={"FOO": "bar"})
    env = b.target.steps[0].instruction
    assert isinstance(env, ins.Env) and env.pairs[0].value == "unset"
    assert b.unused_build_args == ("FOO",)


def test_arg_defaults_expand_in_order() -> None:
    text = "FROM alpine\nARG A=1 B=${A}2\nENV A=x C=$A$B\n"
    b = build(text)
    assert dict(b.target.steps[0].args) == {}
    env = b.target.steps[1].instruction
    assert isinstance(env, ins.Env)
    assert [(p.key, p.value) for p in env.pairs] == [("A", "x"), ("C", "112")]
    assert dict(b.target.steps[1].args) == {"A": "1", "B": "12"}


def test_every_word_sees_values_from_before_the_instruction() -> None:
    text = "FROM alpine\nENV A=1\nENV A=2 B=$A\nLABEL a=$A b=${B}\n"
    _env, env2, label = steps(text)
    assert isinstance(env2, ins.Env) and [p.value for p in env2.pairs] == ["2", "1"]
    assert isinstance(label, ins.Label) and [p.value for p in label.pairs] == ["2", "1"]


def test_run_is_not_expanded_and_gets_args_as_env() -> None:
    text = "FROM alpine\nARG V=1\nENV E=2\nRUN echo $V $E ${X:-y}\n"
    b = build(text)
    run = b.target.steps[-1]
    assert isinstance(run.instruction, ins.Run)
    assert run.instruction.command == ("echo $V $E ${X:-y}",)
    assert dict(run.args) == {"V": "1"}
    assert dict(run.env) == {"E": "2"}
    assert dict(run.build_env) == {"V": "1", "E": "2"}
    assert run.shell == ("/bin/sh", "-c")


def test_expansion_where_buildkit_expands() -> None:
    text = (
        "FROM scratch\n"
        "ARG D=/opt P=8080 U=app S=SIGTERM F=build CH=1000\n"
        "COPY --from=build --chown=$CH:$CH --chmod=0644 --exclude=$D/*.md $D/src ${D}/dst\n"
        "EXPOSE $P ${P}/udp\n"
        "USER $U\n"
        "VOLUME $D/data\n"
        "STOPSIGNAL $S\n"
        "WORKDIR $D\n"
        "CMD echo $D\n"
        'ENTRYPOINT ["$D"]\n'
        "HEALTHCHECK CMD check $D\n"
        "ONBUILD RUN echo $D\n"
    )
    out = steps(text, build_args={}, target=None)
    copy = out[1]
    assert isinstance(copy, ins.Copy)
    assert (copy.from_, copy.chown, copy.sources, copy.dest, copy.excludes) == (
        "build",
        "1000:1000",
        ("/opt/src",),
        "/opt/dst",
        ("/opt/*.md",),
    )
    expose = out[2]
    assert isinstance(expose, ins.Expose) and expose.ports == ("8080/tcp", "8080/udp")
    assert isinstance(out[3], ins.User) and out[3].user == "app"
    assert isinstance(out[4], ins.Volume) and out[4].volumes == ("/opt/data",)
    assert isinstance(out[5], ins.StopSignal) and out[5].signal == "SIGTERM"
    assert isinstance(out[6], ins.Workdir) and out[6].path == "/opt"
    assert isinstance(out[7], ins.Cmd) and out[7].command == ("echo $D",)
    assert isinstance(out[8], ins.Entrypoint) and out[8].command == ("$D",)
    assert isinstance(out[9], ins.Healthcheck) and out[9].test == ("CMD-SHELL", "check $D")
    assert isinstance(out[10], ins.Onbuild) and out[10].expression == "RUN echo $D"


def test_copy_heredoc_content_expansion() -> None:
    text = (
        "FROM scratch\nARG NAME=world\nCOPY <<EOF <<'RAW' /\nhi $NAME \"q\" \\$x\nEOF\n$NAME\nRAW\n"
    )
    copy = steps(text)[1]
    assert isinstance(copy, ins.Copy)
    assert [c.data for c in copy.contents] == ['hi world "q" $x\n', "$NAME\n"]


def test_run_mount_values_are_expanded() -> None:
    text = "FROM alpine\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,id=c-$TARGETARCH make\n"
    run = steps(text)[1]
    assert isinstance(run, ins.Run)
    assert (run.mounts[0].target, run.mounts[0].id) == ("/root/.cache", "c-")


def test_expansion_error_points_at_the_instruction() -> None:
    with pytest.raises(DockerfileError) as info:
        build("FROM alpine\nRUN true\nENV X=${REQUIRED:?required}\n")
    err = info.value
    assert err.message == 'failed to process "${REQUIRED:?required}": REQUIRED: required'
    assert err.source is not None and err.source.start == 3


def test_workdir_is_made_absolute_and_relative_to_the_previous_one() -> None:
    out = steps("FROM alpine\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c/\nWORKDIR /x//y/\n")
    assert [s.path for s in out if isinstance(s, ins.Workdir)] == ["/a", "/a/b", "/a/c", "/x/y"]


def test_stage_references_by_name_and_index() -> None:
    text = (
        "FROM golang AS build\n"  # 0
        "RUN go build\n"
        "FROM alpine AS tools\n"  # 1
        "FROM build AS test\n"  # 2
        "RUN go test\n"
        "FROM scratch\n"  # 3
        "COPY --from=0 /a /a\n"
        "COPY --from=TOOLS /t /t\n"
        "COPY --from=nginx:latest /etc/nginx /etc/nginx\n"
        "RUN --mount=from=tools,target=/t true\n"
    )
    b = build(text)
    assert [s.index for s in b.stages] == [0, 1, 3]
    final = b.target
    assert final.base == ScratchBase()
    assert final.dependencies == (0, 1)
    assert [s.from_stage for s in final.steps] == [0, 1, None, None]
    assert final.steps[3].mount_stages == (1,)
    test = build(text, target="test")
    assert [s.index for s in test.stages] == [0, 2]
    assert test.target.base == StageBase(0)


def test_target_prunes_unneeded_stages() -> None:
    text = "FROM a AS one\nFROM b AS two\nFROM one AS three\nFROM c\n"
    assert [s.name for s in build(text, target="three").stages] == ["one", "three"]
    assert [s.index for s in build(text).stages] == [3]
    assert [s.index for s in build(text, target="Two").stages] == [1]


def test_unknown_target() -> None:
    with pytest.raises(DockerfileError) as info:
        build("FROM a AS build\nFROM b AS release\n", target="relase")
    assert info.value.message == 'target stage "relase" could not be found (did you mean release?)'


def test_cycles_are_errors() -> None:
    text = "FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nCOPY --from=one /y /y\n"
    with pytest.raises(DockerfileError) as info:
        build(text)
    assert info.value.message.startswith("circular dependency detected on stage: ")
    with pytest.raises(DockerfileError) as info:
        build("FROM a AS self\nCOPY --from=self /x /x\n")
    assert info.value.message == "circular dependency detected on stage: self"


def test_copy_from_is_not_expanded_and_must_come_earlier() -> None:
    with pytest.raises(DockerfileError) as info:
        build("ARG F=a\nFROM a AS b\nCOPY --from=$F /x /x\n")
    assert info.value.message.startswith("variable expansion is not supported for --from")
    with pytest.raises(DockerfileError) as info:
        build("FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nFROM one\n")
    assert info.value.message == (
        'cannot copy from stage "two", it needs to be defined before current stage "one"'
    )
    assert info.value.source is not None and info.value.source.start == 2


def test_invalid_stage_index() -> None:
    with pytest.raises(DockerfileError) as info:
        build("FROM a\nCOPY --from=3 /x /x\n")
    assert info.value.message == "invalid stage index 3"
    assert info.value.source is not None and info.value.source.start == 2


def test_from_stage_must_be_earlier_else_it_is_an_image() -> None:
    b = build("FROM later AS first\nFROM alpine AS later\n", target="first")
    assert b.target.base == ImageBase("later")


def test_stage_platforms() -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM golang AS build\n"
        "FROM build AS child\n"
        "FROM --platform=linux/s390x alpine AS fixed\n"
        "FROM alpine\n"
        "COPY --from=child / /\nCOPY --from=fixed / /\n"
    )
    b = build(text)
    assert {s.name or "final": str(s.platform) for s in b.stages} == {
        "build": "linux/amd64",
        "child": "linux/amd64",
        "fixed": "linux/s390x",
        "final": "linux/arm64",
    }


def test_blank_base_and_bad_platform() -> None:
    with pytest.raises(DockerfileError) as info:
        build("ARG IMG\nFROM $IMG\n")
    assert info.value.message == "base name ($IMG) should not be blank"
    with pytest.raises(DockerfileError) as info:
        build("FROM --platform=linux/a/b/c alpine\n")
    assert info.value.message.startswith("failed to parse platform linux/a/b/c")


def test_runtime_config_is_folded() -> None:
    text = (
        "FROM scratch\n"
        "ENV PATH=/app:$PATH A=1\n"
        "LABEL a=1 b=2\nLABEL a=3\n"
        "EXPOSE 80 8000-8001/udp 80\n"
        "VOLUME /data\nUSER app\nWORKDIR /srv\nSTOPSIGNAL SIGINT\n"
        'SHELL ["/bin/bash", "-c"]\n'
        "CMD run --fast\n"
        "HEALTHCHECK --interval=5s CMD true\n"
        "ONBUILD RUN echo\n"
    )
    config = build(text).target.config
    assert config.env == (f"PATH=/app:{DEFAULT_PATH}", "A=1")
    assert config.labels == (("a", "3"), ("b", "2"))
    assert config.exposed_ports == ("80/tcp", "8000/udp", "8001/udp")
    assert (config.volumes, config.user, config.working_dir, config.stop_signal) == (
        ("/data",),
        "app",
        "/srv",
        "SIGINT",
    )
    assert config.cmd == ("/bin/bash", "-c", "run --fast")
    assert config.shell == ("/bin/bash", "-c")
    assert config.healthcheck is not None and config.healthcheck.interval_ns == 5 * 10**9
    assert config.on_build == ("RUN echo",)


def test_entrypoint_drops_inherited_cmd() -> None:
    text = 'FROM scratch AS base\nCMD ["base"]\nFROM base\nENTRYPOINT ["/ep"]\n'
    config = build(text).target.config
    assert (config.entrypoint, config.cmd) == (("/ep",), None)
    text2 = 'FROM scratch\nCMD ["x"]\nENTRYPOINT ["/ep"]\n'
    assert build(text2).target.config.cmd == ("x",)


def test_child_stage_inherits_env_and_runs_onbuild_triggers() -> None:
    text = (
        "FROM scratch AS base\nENV A=1\nWORKDIR /w\nONBUILD ENV FROM_TRIGGER=$A\n"
        "FROM base\nRUN true\n"
    )
    b = build(text)
    child = b.target
    assert isinstance(child.steps[0].instruction, ins.Env)
    assert child.steps[0].source.start == 5  # triggers run at the child's FROM
    assert dict(child.steps[1].build_env)["FROM_TRIGGER"] == "1"
    assert child.steps[1].workdir == "/w"
    assert child.config.on_build == ()


def test_expose_errors() -> None:
    for spec, message in [
        ("abc", "invalid containerPort: abc"),
        ("80/xyz", "invalid proto: xyz"),
        ("90-80", "invalid range specified for containerPort: 90-80"),
    ]:
        with pytest.raises(DockerfileError) as info:
            build(f"FROM a\nEXPOSE {spec}\n")
        assert info.value.message == message


class Configs:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None:
        self.asked.append((ref, str(platform)))
        return RuntimeConfig(
            env=("GOPATH=/go", "PATH=/go/bin:/usr/bin"),
            working_dir="/go",
            on_build=("LABEL from=onbuild",),
        )


def test_base_image_config_from_a_resolver() -> None:
    configs = Configs()
    b = build("FROM golang\nWORKDIR $GOPATH/src\nRUN echo\n", base_configs=configs)
    assert configs.asked == [("golang", "linux/arm64")]
    label, workdir, _run = (s.instruction for s in b.target.steps)
    assert isinstance(label, ins.Label) and label.pairs[0].value == "onbuild"
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/go/src"
    assert dict(b.target.steps[2].build_env)["PATH"] == "/go/bin:/usr/bin"


def test_undefined_variables_are_recorded_when_the_env_is_known() -> None:
    b = build("FROM scratch\nARG DECLARED\nENV A=$DECLARED B=$NOPE\n")
    assert [(n, r.start) for n, r in b.target.undefined] == [("NOPE", 3)]
    unknown = build("FROM alpine\nENV B=$NOPE\n")
    assert unknown.target.undefined == () and not unknown.target.env_known


def test_proxy_args_are_passed_without_declaration() -> None:
    b = build("FROM alpine\nRUN curl x\n", build_args={"HTTP_PROXY": "http://p:3128"})
    assert dict(b.target.steps[0].args) == {"HTTP_PROXY": "http://p:3128"}
    assert b.unused_build_args == ()


def test_windows_stage_uses_cmd_shell_and_backtick() -> None:
    text = "# escape=`\nFROM --platform=windows/amd64 mcr.microsoft.com/windows/nanoserver\nRUN dir `\n  C:\\\n"
    b = build(text)
    run = b.target.steps[0]
    assert run.shell == ("cmd", "/S", "/C")
    assert isinstance(run.instruction, ins.Run) and run.instruction.command == ("dir   C:\\",)


def test_env_wins_over_arg_of_the_same_name() -> None:
    text = "FROM scratch\nENV V=from-env\nARG V=from-arg\nRUN echo\nWORKDIR /$V\n"
    b = build(text)
    run = b.target.steps[2]
    assert dict(run.build_env)["V"] == "from-env"
    assert dict(run.args)["V"] == "from-arg"
    workdir = b.target.steps[3].instruction
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/from-env"


def test_stop_signals() -> None:
    for ok in ("SIGTERM", "TERM", "sigquit", "9", "SIGRTMIN+3"):
        assert build(f"FROM a\nSTOPSIGNAL {ok}\n").target.config.stop_signal == ok
    with pytest.raises(DockerfileError) as info:
        build("FROM a\nSTOPSIGNAL SIGNOPE\n")
    assert info.value.message == "Invalid signal: SIGNOPE"
