"""The argv of RUN steps: exec and shell forms, and heredocs as BuildKit runs them."""

from __future__ import annotations

from bale.frontends.dockerfile.resolve import resolve
from bale.frontends.dockerfile.run import RunCommand, RunFile, run_command
from bale.oci.platform import Platform

AMD = Platform.parse("linux/amd64")


def commands(text: str) -> list[RunCommand]:
    build = resolve(text, target_platform=AMD)
    return [run_command(s) for s in build.target.steps if s.instruction.name == "RUN"]


def test_shell_and_exec_forms() -> None:
    shell, exec_form, bash = commands(
        'FROM a\nRUN echo $HOME\nRUN ["/bin/echo", "hi"]\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\n'
        "RUN make | tee log\n"
    )
    assert shell.argv == ("/bin/sh", "-c", "echo $HOME")
    assert exec_form.argv == ("/bin/echo", "hi")
    assert bash.argv == ("/bin/bash", "-eo", "pipefail", "-c", "make | tee log")


def test_single_heredoc_runs_in_the_shell() -> None:
    (cmd,) = commands("FROM a\nRUN <<-EOF\n\techo one\n\techo two\n\tEOF\n")
    assert cmd.argv == ("/bin/sh", "-c", "echo one\necho two\n")
    assert cmd.files == ()


def test_shebang_heredoc_is_executed() -> None:
    (cmd,) = commands("FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n")
    assert cmd.argv == ("/dev/pipes/EOF",)
    assert cmd.files == (RunFile("/dev/pipes/EOF", "#!/usr/bin/env python3\nprint(1)\n"),)


def test_heredoc_with_other_words_is_put_back_for_the_shell() -> None:
    (cmd,) = commands("FROM a\nRUN python3 <<PY > /out\nprint(1)\nPY\n")
    assert cmd.argv == ("/bin/sh", "-c", "python3 <<PY > /out\nprint(1)\nPY")
