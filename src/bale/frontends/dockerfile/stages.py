"""Typed instructions grouped into build stages, with the global ARGs that precede them."""

from __future__ import annotations

from dataclasses import dataclass

from bale.errors import DockerfileError
from bale.frontends.dockerfile.instructions import Arg, From, Instruction, from_node
from bale.frontends.dockerfile.parser import ParsedDockerfile, parse


@dataclass(frozen=True)
class Stage:
    """One `FROM` and the instructions up to the next; `name` is lowercased or ""."""

    index: int
    name: str
    from_: From
    instructions: tuple[Instruction, ...]
    comment: str = ""

    @property
    def display_name(self) -> str:
        return self.name or str(self.index)


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: its global ARGs, its stages and the AST they came from."""

    parsed: ParsedDockerfile
    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]

    @property
    def filename(self) -> str:
        return self.parsed.filename

    @property
    def lines(self) -> tuple[str, ...]:
        return self.parsed.lines

    def stage_by_name(self, name: str) -> Stage | None:
        lowered = name.lower()
        for stage in self.stages:
            if stage.name and stage.name == lowered:
                return stage
        return None


def load(source: ParsedDockerfile | Dockerfile | str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse text (or take a parsed file) and group it into stages."""
    if isinstance(source, Dockerfile):
        return source
    parsed = source if isinstance(source, ParsedDockerfile) else parse(source, filename)
    meta: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    comment = ""
    body: list[Instruction] = []
    for node in parsed.nodes:
        inst = from_node(node, parsed)
        if isinstance(inst, From):
            if current is not None:
                stages.append(Stage(len(stages), current.stage_name, current, tuple(body), comment))
            current, body = inst, []
            comment = " ".join(node.comments)
            continue
        if current is None:
            if isinstance(inst, Arg):
                meta.append(inst)
                continue
            raise DockerfileError(
                f"dockerfile parse error on line {node.start}: no build stage in current context",
                source=inst.source,
                lines=parsed.lines,
                hint="a Dockerfile starts with FROM (only ARG may come before it)",
            )
        body.append(inst)
    if current is None:
        # Only ARGs (or nothing): BuildKit's words for a file without any stage.
        raise DockerfileError(
            "dockerfile contains no stages to build",
            source=meta[-1].source if meta else None,
            lines=parsed.lines,
            hint="a Dockerfile needs at least one FROM",
        )
    stages.append(Stage(len(stages), current.stage_name, current, tuple(body), comment))
    return Dockerfile(parsed, tuple(meta), tuple(stages))
