"""Typed instructions: every instruction and flag, and the errors for bad ones."""

from __future__ import annotations

import pytest

from bale.errors import DockerfileError
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.mounts import Mount
from bale.frontends.dockerfile.stages import load


def one(line: str) -> ins.Instruction:
    df = load(f"FROM base\n{line}\n")
    return df.stages[0].instructions[0]


def error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        load(text)
    return info.value


def test_from_forms() -> None:
    df = load(
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM build\nFROM scratch as x\n"
    )
    first = df.stages[0].from_
    assert (first.image, first.platform, first.stage_name, first.as_keyword) == (
        "golang:1.22",
        "$BUILDPLATFORM",
        "build",
        "AS",
    )
    assert first.source.start == 1
    assert df.stages[1].from_.stage_name == ""
    assert df.stages[2].name == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM a b\n", "FROM requires either one or three arguments"),
        ("FROM a AS\n", "FROM requires either one or three arguments"),
        (
            "FROM a AS 1x\n",
            'invalid name for build stage: "1x", name can\'t start with a number or contain symbols',
        ),
        (
            "FROM a AS b$c\n",
            'invalid name for build stage: "b$c", name can\'t start with a number or contain symbols',
        ),
        ("FROM --plat=x a\n", "unknown flag: --plat"),
        ("FROM --platform a\n", "missing a value on flag: --platform"),
    ],
)
def test_from_errors(text: str, message: str) -> None:
    assert error(text).message == f"dockerfile parse error on line 1: {message}"


def test_run_forms_and_flags() -> None:
    run = one('RUN --network=none --security=insecure ["sh", "-c", "echo"]')
    assert isinstance(run, ins.Run)
    assert (run.command, run.prepend_shell, run.network, run.security) == (
        ("sh", "-c", "echo"),
        False,
        "none",
        "insecure",
    )
    shell = one("RUN echo $HOME")
    assert isinstance(shell, ins.Run) and shell.command == ("echo $HOME",) and shell.prepend_shell


def test_run_mounts() -> None:
    run = one(
        "RUN --mount=type=bind,from=build,source=/out,target=/in "
        "--mount=type=cache,target=/root/.cache,id=go,sharing=locked,mode=0700,uid=1,gid=2 "
        "--mount=type=tmpfs,target=/tmp,size=64m "
        "--mount=type=secret,id=token,required "
        "--mount=type=secret,target=/run/secrets/npmrc "
        "--mount=type=ssh "
        "--mount=target=/ctx,rw "
        "make"
    )
    assert isinstance(run, ins.Run)
    assert run.mounts == (
        Mount("bind", "/in", "/out", "build", True),
        Mount(
            "cache",
            "/root/.cache",
            readonly=False,
            id="go",
            sharing="locked",
            mode=0o700,
            uid=1,
            gid=2,
        ),
        Mount("tmpfs", "/tmp", readonly=False, size=64 * 1024 * 1024),
        Mount("secret", "/run/secrets/token", id="token", required=True),
        Mount("secret", "/run/secrets/npmrc", id="npmrc"),
        Mount("ssh", "/run/buildkit/ssh_agent.5", id="default"),
        Mount("bind", "/ctx", readonly=False),
    )
    cache = one("RUN --mount=type=cache,target=/var/cache/apt apt-get update")
    assert isinstance(cache, ins.Run) and cache.mounts[0].id == "/var/cache/apt"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--mount=type=bogus,target=/x", 'unsupported mount type "bogus"'),
        ("--mount=type=bnd,target=/x", 'unsupported mount type "bnd" (did you mean bind?)'),
        (
            "--mount=type=cache,target=/x,trget=/y",
            "unexpected key 'trget' in 'trget=/y' (did you mean target?)",
        ),
        ("--mount=type=cache", "mount type cache requires a target"),
        ("--mount=type=bind,target=/x,mode=0755", 'mode not allowed for "bind" type mounts'),
        ("--mount=type=cache,target=/x,sharing=sometimes", 'unsupported sharing value "sometimes"'),
        ("--mount=type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount"),
        ("--mount=type=secret,id=a,from=b", "secret mount should not have a from"),
        ("--mount=type=cache,target=/x,mode=999", "invalid value 999 for mode"),
        ("--mount=type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("--mount=type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"),
        ("--mount=type=cache,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
        ("--network=bridge", 'network mode "bridge" not supported'),
        ("--security=weird", 'security "weird" is not valid'),
        ("--networks=none", "unknown flag: --networks (did you mean network?)"),
    ],
)
def test_run_flag_errors(flag: str, message: str) -> None:
    err = error(f"FROM a\nRUN {flag} true\n")
    assert err.message == f"dockerfile parse error on line 2: {message}"
    assert err.source is not None and err.source.start == 2


def test_cmd_entrypoint_shell() -> None:
    cmd = one('CMD ["nginx", "-g", "daemon off;"]')
    assert isinstance(cmd, ins.Cmd) and cmd.command == ("nginx", "-g", "daemon off;")
    assert not cmd.prepend_shell
    ep = one("ENTRYPOINT exec app --flag")
    assert (
        isinstance(ep, ins.Entrypoint) and ep.prepend_shell and ep.command == ("exec app --flag",)
    )
    sh = one('SHELL ["powershell", "-Command"]')
    assert isinstance(sh, ins.Shell) and sh.shell == ("powershell", "-Command")
    assert error("FROM a\nSHELL /bin/bash -c\n").message.endswith(
        "SHELL requires the arguments to be in JSON form"
    )


def test_env_label_arg() -> None:
    env = one('ENV A=1 B="x y"')
    assert isinstance(env, ins.Env)
    assert env.pairs == (ins.KeyValue("A", "1"), ins.KeyValue("B", '"x y"'))
    label = one("LABEL org.opencontainers.image.title=app")
    assert isinstance(label, ins.Label) and label.pairs[0].key == "org.opencontainers.image.title"
    arg = one("ARG A B=2 C=")
    assert isinstance(arg, ins.Arg)
    assert arg.args == (ins.ArgDef("A"), ins.ArgDef("B", "2"), ins.ArgDef("C", ""))


def test_simple_instructions() -> None:
    assert one("EXPOSE 80 443/udp") == ins.Expose(
        source=one("EXPOSE 80 443/udp").source,
        keyword="EXPOSE",
        original="EXPOSE 80 443/udp",
        ports=("443/udp", "80"),  # sorted, as BuildKit does
    )
    user = one("USER app:app")
    assert isinstance(user, ins.User) and user.user == "app:app"
    workdir = one("WORKDIR /srv/my app")
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/srv/my app"
    vol = one('VOLUME ["/data", "/logs"]')
    assert isinstance(vol, ins.Volume) and vol.volumes == ("/data", "/logs")
    vol2 = one("VOLUME /a /b")
    assert isinstance(vol2, ins.Volume) and vol2.volumes == ("/a", "/b")
    sig = one("STOPSIGNAL SIGQUIT")
    assert isinstance(sig, ins.StopSignal) and sig.signal == "SIGQUIT"
    m = one("MAINTAINER Jane <jane@example.com>")
    assert isinstance(m, ins.Maintainer) and m.maintainer == "Jane <jane@example.com>"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ('VOLUME ["/a", ""]', "VOLUME specified can not be an empty string"),
        ("ARG", "ARG requires at least one argument"),
        ("RUN", "RUN requires at least one argument"),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD RUNN x", "unknown instruction: RUNN (did you mean RUN?)"),
        (
            "COPY",
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
        ),
        (
            "COPY a",
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
        ),
        ("ENV =x", "ENV names can not be blank"),
        ("ARG =x", "ARG names can not be blank"),
        ("HEALTHCHECK --interval=0s CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("ADD --from=x a b", "unknown flag: --from"),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
        ("COPY --from=a --from=b a b", "duplicate flag specified: --from"),
        ("USER --x=1 root", "unknown flag: --x"),
        ("RUNN echo", "unknown instruction: RUNN (did you mean RUN?)"),
        ("runn echo", "unknown instruction: runn (did you mean run?)"),
        ("CPY a b", "unknown instruction: CPY (did you mean COPY?)"),
        ("XYZZY a", "unknown instruction: XYZZY"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK PING x", 'Unknown type "PING" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK --interval=5 CMD x", 'time: invalid duration "5"'),
        ("HEALTHCHECK --interval=1us CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --retries=0 CMD x", "--retries must be at least 1 (not 0)"),
    ],
)
def test_instruction_errors(line: str, message: str) -> None:
    err = error(f"FROM a\n{line}\n")
    assert err.message == f"dockerfile parse error on line 2: {message}"
    assert err.source is not None and (err.source.start, err.source.end) == (2, 2)
    assert err.lines == ("FROM a", line)


def test_copy_and_add_flags() -> None:
    copy = one(
        "COPY --from=build --chown=app:app --chmod=0755 --link --parents "
        "--exclude=*.md --exclude=tests a b /dst/"
    )
    assert isinstance(copy, ins.Copy) and not copy.is_add
    assert (copy.sources, copy.dest, copy.from_, copy.chown, copy.chmod) == (
        ("a", "b"),
        "/dst/",
        "build",
        "app:app",
        "0755",
    )
    assert copy.link and copy.parents and copy.excludes == ("*.md", "tests")
    add = one(
        "ADD --keep-git-dir=true --checksum=sha256:abc --link=false https://example.com/x.tar.gz /x"
    )
    assert isinstance(add, ins.Copy) and add.is_add
    assert add.keep_git_dir and not add.link and add.checksum == "sha256:abc"


def test_copy_heredoc_sources() -> None:
    df = load("FROM a\nCOPY <<EOF <<'RAW' plain.txt /etc/\nx=$A\nEOF\ny=$A\nRAW\n")
    copy = df.stages[0].instructions[0]
    assert isinstance(copy, ins.Copy)
    assert copy.sources == ("plain.txt",)
    assert copy.contents == (
        ins.SourceContent("EOF", "x=$A\n", True),
        ins.SourceContent("RAW", "y=$A\n", False),
    )
    assert (copy.source.start, copy.source.end) == (2, 6)


def test_heredoc_as_destination_is_an_error() -> None:
    err = error("FROM a\nCOPY a <<EOF\nbody\nEOF\n")
    assert err.message == (
        "dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination"
    )
    assert err.source is not None and (err.source.start, err.source.end) == (2, 4)


def test_run_heredoc_files() -> None:
    df = load("FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n")
    run = df.stages[0].instructions[0]
    assert isinstance(run, ins.Run)
    assert run.command == ("<<-EOF",)
    assert run.files[0].data() == "echo hi\n"


def test_healthcheck() -> None:
    hc = one(
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s "
        "--start-interval=500ms --retries=3 CMD curl -f http://localhost/"
    )
    assert isinstance(hc, ins.Healthcheck)
    assert hc.test == ("CMD-SHELL", "curl -f http://localhost/")
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        30 * 10**9,
        90 * 10**9,
        1_500_000_000,
        500_000_000,
        3,
    )
    exec_form = one('HEALTHCHECK CMD ["/bin/check", "--quick"]')
    assert isinstance(exec_form, ins.Healthcheck)
    assert exec_form.test == ("CMD", "/bin/check", "--quick")
    none = one("HEALTHCHECK NONE")
    assert isinstance(none, ins.Healthcheck) and none.test == ("NONE",)


def test_onbuild() -> None:
    ob = one("ONBUILD COPY . /app/src")
    assert isinstance(ob, ins.Onbuild)
    assert ob.expression == "COPY . /app/src"
    assert isinstance(ob.trigger, ins.Copy) and ob.trigger.dest == "/app/src"


def test_instructions_before_from() -> None:
    err = error("ARG A\nRUN echo\nFROM x\n")
    assert err.message == "dockerfile parse error on line 2: no build stage in current context"
    err = error("ARG A=1\n")
    assert err.message == "dockerfile contains no stages to build"


def test_meta_args_and_stage_grouping() -> None:
    df = load("ARG A=1\nARG B\nFROM x AS one\nRUN a\nFROM one\nRUN b\nRUN c\n")
    assert [a.args[0].key for a in df.meta_args] == ["A", "B"]
    assert [(s.index, s.name, len(s.instructions)) for s in df.stages] == [
        (0, "one", 1),
        (1, "", 2),
    ]
