"""Expansion of typed instructions, only where BuildKit expands.

Expanded: ENV and LABEL (keys and values), ADD/COPY (sources, destination, --from, --chown,
--chmod, --exclude, --checksum, heredoc bodies not quoted), EXPOSE (split into words), USER,
WORKDIR, VOLUME, STOPSIGNAL, RUN --mount values. Not expanded: RUN commands (the shell does it
with the ARG/ENV values in its environment), CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD,
MAINTAINER. ARG defaults are expanded one by one as they are declared (see resolve).
Every word of one instruction sees the variables as they were before that instruction.
"""

from __future__ import annotations

from collections.abc import Mapping

from bale.errors import DockerfileError
from bale.frontends.dockerfile.instructions import (
    Copy,
    Env,
    Expose,
    Instruction,
    KeyValue,
    Label,
    Run,
    SourceContent,
    StopSignal,
    User,
    Volume,
    Workdir,
    evolve,
)
from bale.frontends.dockerfile.mounts import MountError, parse_mount
from bale.frontends.dockerfile.shell import Lexer, ShellError


class Expander:
    """Expands words for one instruction against a fixed environment, collecting the names
    that were referenced but not set (for the UndefinedVar check)."""

    def __init__(
        self, lexer: Lexer, env: Mapping[str, str], inst: Instruction, lines: tuple[str, ...]
    ) -> None:
        self.lexer = lexer
        self.env = env
        self.inst = inst
        self.lines = lines
        self.unmatched: list[str] = []

    def _fail(self, word: str, exc: ShellError) -> DockerfileError:
        return DockerfileError(
            f'failed to process "{word}": {exc}', source=self.inst.source, lines=self.lines
        )

    def word(self, word: str) -> str:
        if self.lexer.is_plain(word):
            return word
        try:
            result = self.lexer.expand(word, self.env)
        except ShellError as exc:
            raise self._fail(word, exc) from None
        self.unmatched.extend(result.unmatched)
        return result.value

    def words(self, word: str) -> list[str]:
        try:
            result = self.lexer.expand(word, self.env, split=True)
        except ShellError as exc:
            raise self._fail(word, exc) from None
        self.unmatched.extend(result.unmatched)
        return result.words

    def raw(self, text: str) -> str:
        """Heredoc bodies: variables and escapes only; quotes are ordinary characters."""
        lexer = Lexer(self.lexer.escape, skip_quotes=True)
        try:
            return lexer.process_word(text, self.env)
        except ShellError as exc:
            raise self._fail(text, exc) from None


def _plain_from(inst: Copy, ex: Expander) -> str:
    """COPY --from is never expanded: BuildKit refuses a value that expansion would change
    (the stage graph is known before any ARG has a value)."""
    if not inst.from_ or ex.lexer.is_plain(inst.from_):
        return inst.from_
    try:
        plain = ex.lexer.process_word(inst.from_, {})
    except ShellError as exc:
        raise ex._fail(inst.from_, exc) from None
    if plain != inst.from_:
        raise DockerfileError(
            "variable expansion is not supported for --from, define a new stage with FROM "
            "using ARG from global scope as a workaround",
            source=inst.source,
            lines=ex.lines,
            hint="ARG NAME=stage before the first FROM, then FROM ${NAME} AS src; COPY --from=src",
        )
    return plain


def expand_instruction(inst: Instruction, ex: Expander) -> Instruction:
    """The instruction with its expandable words expanded (others returned unchanged)."""
    if isinstance(inst, Env | Label):
        pairs = tuple(KeyValue(ex.word(p.key), ex.word(p.value)) for p in inst.pairs)
        return inst if pairs == inst.pairs else evolve(inst, pairs=pairs)
    if isinstance(inst, Copy):
        contents = tuple(
            SourceContent(c.path, ex.raw(c.data), c.expand) if c.expand else c
            for c in inst.contents
        )
        changes = {
            "sources": tuple(ex.word(s) for s in inst.sources),
            "dest": ex.word(inst.dest),
            "contents": contents,
            "from_": _plain_from(inst, ex),
            "chown": ex.word(inst.chown),
            "chmod": ex.word(inst.chmod),
            "excludes": tuple(ex.word(e) for e in inst.excludes),
            "checksum": ex.word(inst.checksum),
        }
        if all(getattr(inst, k) == v for k, v in changes.items()):
            return inst
        return evolve(inst, **changes)
    if isinstance(inst, Expose):
        ports: list[str] = []
        for port in inst.ports:
            ports.extend(ex.words(port))
        return evolve(inst, ports=tuple(ports))
    if isinstance(inst, User):
        return evolve(inst, user=ex.word(inst.user))
    if isinstance(inst, Workdir):
        path = ex.word(inst.path)
        return inst if path == inst.path else evolve(inst, path=path)
    if isinstance(inst, Volume):
        volumes = tuple(ex.word(v) for v in inst.volumes)
        if any(v == "" for v in volumes):
            raise DockerfileError(
                "VOLUME specified can not be an empty string", source=inst.source, lines=ex.lines
            )
        return evolve(inst, volumes=volumes)
    if isinstance(inst, StopSignal):
        return evolve(inst, signal=ex.word(inst.signal))
    if isinstance(inst, Run) and inst.mount_specs:
        try:
            mounts = tuple(parse_mount(spec, ex.word, i) for i, spec in enumerate(inst.mount_specs))
        except MountError as exc:
            raise DockerfileError(str(exc), source=inst.source, lines=ex.lines) from None
        return evolve(inst, mounts=mounts)
    return inst
