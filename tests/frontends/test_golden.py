"""Golden tests: each `golden/NAME.Dockerfile` resolves to the dump in `golden/NAME.expected`
(or fails with the rendered error in it). The expected files were written from the Dockerfile
reference and checked by hand; set BALE_UPDATE_GOLDEN=1 only to see a diff while editing.

A Dockerfile's first line may be `# golden: target=NAME platform=P build-arg=K=V ...`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bale.cli.render_error import render
from bale.errors import DockerfileError
from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import ResolvedBuild, Step, resolve
from bale.oci.platform import Platform

GOLDEN = Path(__file__).parent / "golden"


def _fields(inst: ins.Instruction) -> str:
    if isinstance(inst, ins.Run):
        parts = [repr(list(inst.command)), "shell" if inst.prepend_shell else "exec"]
        parts += [
            f"mount={m.type}:{m.target}"
            + (f":from={m.from_}" if m.from_ else "")
            + (f":id={m.id}" if m.id and m.type != "bind" else "")
            for m in inst.mounts
        ]
        if inst.network:
            parts.append(f"network={inst.network}")
        parts += [f"file={f.name}:{f.data()!r}:expand={f.expand}" for f in inst.files]
        return " ".join(parts)
    if isinstance(inst, ins.Cmd | ins.Entrypoint):
        return f"{list(inst.command)!r} {'shell' if inst.prepend_shell else 'exec'}"
    if isinstance(inst, ins.Env | ins.Label):
        return " ".join(f"{p.key}={p.value!r}" for p in inst.pairs)
    if isinstance(inst, ins.Arg):
        return " ".join(d.key if d.value is None else f"{d.key}={d.value!r}" for d in inst.args)
    if isinstance(inst, ins.Copy):
        parts = [repr(list(inst.sources)), repr(inst.dest)]
        for name in ("from_", "chown", "chmod", "checksum"):
            if getattr(inst, name):
                parts.append(f"{name.rstrip('_')}={getattr(inst, name)}")
        parts += [f"exclude={e}" for e in inst.excludes]
        parts += [f"content={c.path}:{c.data!r}" for c in inst.contents]
        parts += [flag for flag in ("link", "parents", "keep_git_dir") if getattr(inst, flag)]
        return " ".join(parts)
    if isinstance(inst, ins.Expose):
        return " ".join(inst.ports)
    if isinstance(inst, ins.Workdir):
        return inst.path
    if isinstance(inst, ins.User):
        return inst.user
    if isinstance(inst, ins.Volume):
        return repr(list(inst.volumes))
    if isinstance(inst, ins.StopSignal):
        return inst.signal
    if isinstance(inst, ins.Healthcheck):
        return f"{list(inst.test)!r} interval={inst.interval} retries={inst.retries}"
    if isinstance(inst, ins.Onbuild):
        return inst.expression
    if isinstance(inst, ins.Shell):
        return repr(list(inst.shell))
    if isinstance(inst, ins.Maintainer):
        return inst.maintainer
    return ""


def _step(step: Step) -> list[str]:
    inst = step.instruction
    rng = step.source
    where = f"{rng.start}" if rng.start == rng.end else f"{rng.start}-{rng.end}"
    line = f"  {where:>5} {inst.name} {_fields(inst)}".rstrip()
    out = [line]
    if isinstance(inst, ins.Run):
        env = " ".join(f"{k}={v}" for k, v in step.build_env)
        out.append(f"        env: {env}".rstrip())
        out.append(f"        workdir={step.workdir} user={step.user or '-'}")
    if step.from_stage is not None:
        out.append(f"        from stage {step.from_stage}")
    return out


def dump(build: ResolvedBuild) -> str:
    out = [f"target={build.target.display_name} platform={build.target_platform}"]
    if build.unused_build_args:
        out.append(f"unused build args: {' '.join(build.unused_build_args)}")
    for stage in build.stages:
        out.append(
            f"stage {stage.index} {stage.name or '-'} base={stage.base} "
            f"platform={stage.platform} deps={list(stage.dependencies)}"
        )
        for step in stage.steps:
            out.extend(_step(step))
        c = stage.config
        out.append(f"  config: env={list(c.env)} cmd={c.cmd} entrypoint={c.entrypoint}")
        out.append(
            f"          workdir={c.working_dir!r} user={c.user!r} "
            f"ports={list(c.exposed_ports)} labels={list(c.labels)}"
        )
    return "\n".join(out) + "\n"


def run_case(path: Path) -> str:
    text = path.read_text()
    options: dict[str, str] = {}
    build_args: dict[str, str] = {}
    first = text.splitlines()[0] if text else ""
    if first.startswith("# golden:"):
        for item in first.removeprefix("# golden:").split():
            key, _, value = item.partition("=")
            if key == "build-arg":
                k, _, v = value.partition("=")
                build_args[k] = v
            else:
                options[key] = value
    try:
        build = resolve(
            text,
            filename=path.name,
            target_platform=Platform.parse(options.get("platform", "linux/arm64")),
            build_platform=Platform.parse("linux/amd64"),
            build_args=build_args,
            target=options.get("target"),
        )
    except DockerfileError as exc:
        return render(exc) + "\n"
    return dump(build)


CASES = sorted(GOLDEN.glob("*.Dockerfile"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    expected_path = path.with_suffix(".expected")
    actual = run_case(path)
    if os.environ.get("BALE_UPDATE_GOLDEN") == "1" and not expected_path.exists():
        expected_path.write_text(actual)
    assert actual == expected_path.read_text()


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 10
