"""The argv a RUN step executes, heredocs included, as BuildKit's dispatchRun builds it."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from bale.frontends.dockerfile.instructions import Run
from bale.frontends.dockerfile.parser import parse_heredoc
from bale.frontends.dockerfile.resolve import Step

# Where BuildKit mounts a heredoc that starts with `#!` so it can be executed.
HEREDOC_DIR = "/dev/pipes"


@dataclass(frozen=True)
class RunFile:
    """A file the step needs mounted read-only (an executable heredoc)."""

    path: str
    data: str
    mode: int = 0o755


@dataclass(frozen=True)
class RunCommand:
    argv: tuple[str, ...]
    files: tuple[RunFile, ...] = ()


def run_command(step: Step, *, windows: bool = False) -> RunCommand:
    """The process arguments for a RUN step (its `shell` prepended for the shell form).

    A RUN that is a single heredoc runs the body with the shell, or executes it directly when
    it starts with `#!` (mounted under /dev/pipes); a RUN mixing heredocs with other words is
    handed to the shell with the heredoc bodies put back after the command line.
    """
    inst = step.instruction
    if not isinstance(inst, Run):
        raise TypeError("run_command takes a RUN step")
    if not inst.files:
        argv = (*step.shell, *inst.command) if inst.prepend_shell else inst.command
        return RunCommand(tuple(argv))
    command = inst.command[0] if inst.command else ""
    single = parse_heredoc(command.strip())
    if single is not None and len(inst.files) == 1:
        body = inst.files[0]
        data = body.data()
        if not windows and data.startswith("#!"):
            path = posixpath.join(HEREDOC_DIR, body.name)
            return RunCommand((path,), (RunFile(path, data),))
        return RunCommand((*step.shell, data))
    full = command
    for body in inst.files:
        full += "\n" + body.content + body.name
    return RunCommand((*step.shell, full))
