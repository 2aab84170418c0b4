"""The one exception tree of bale.

    BaleError                 root; carries a message, a hint and context
    ├── NotFound              a blob, image, stage, file or platform that is not there
    ├── AlreadyExists         content or a name that is already present
    ├── InvalidArgument       bad user input: a reference, a flag value, an archive
    │   └── DigestMismatch    content whose hash or size is not what was promised
    ├── FailedPrecondition    the operation is not allowed in this state (store mode, lock)
    ├── Unavailable           a tool, kernel feature or service that cannot be used here
    ├── DockerfileError       a Dockerfile that cannot be parsed or resolved (source range)
    ├── BakeError             a bake definition (HCL, JSON, Compose) that cannot be resolved
    ├── StepError             a build step that failed (vertex, source range, exit code)
    └── RegistryError         a registry that refused or answered badly

The CLI maps each class to an exit code (docs/exit-codes.md); the library never prints.
"""

from __future__ import annotations

from dataclasses import dataclass


class BaleError(Exception):
    """Root of every error bale raises on purpose."""

    def __init__(self, message: str, *, hint: str = "", context: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context = context

    def with_context(self, context: str) -> BaleError:
        """Record what was being done when the error happened (outermost first)."""
        self.context = f"{context}: {self.context}" if self.context else context
        return self

    def __str__(self) -> str:
        text = f"{self.context}: {self.message}" if self.context else self.message
        return text


class NotFound(BaleError):
    pass


class AlreadyExists(BaleError):
    pass


class InvalidArgument(BaleError):
    pass


class DigestMismatch(InvalidArgument):
    pass


class FailedPrecondition(BaleError):
    pass


class Unavailable(BaleError):
    pass


@dataclass(frozen=True)
class SourceRange:
    """1-based inclusive line range in a named source file."""

    filename: str
    start: int
    end: int


class DockerfileError(BaleError):
    def __init__(
        self,
        message: str,
        *,
        source: SourceRange | None = None,
        lines: tuple[str, ...] = (),
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        # The whole source text, so the CLI can print the offending lines.
        self.lines = lines


class BakeError(BaleError):
    """A bake file or `bake` command line that cannot be read or resolved.

    `source` points at the offending lines when the error has a place in a file; the column
    range is part of the message (`file:line,col-col: ...`), as buildx prints it.
    """

    def __init__(
        self,
        message: str,
        *,
        source: SourceRange | None = None,
        lines: tuple[str, ...] = (),
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.lines = lines


class StepError(BaleError):
    def __init__(
        self,
        message: str,
        *,
        vertex: str = "",
        source: SourceRange | None = None,
        lines: tuple[str, ...] = (),
        exit_code: int | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.vertex = vertex
        self.source = source
        self.lines = lines
        self.exit_code = exit_code


class RegistryError(BaleError):
    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


# Docker's words when a multi-platform result is aimed at a store that cannot hold it.
MULTI_PLATFORM_REFUSAL = (
    "ERROR: Multi-platform build is not supported for the docker driver.\n"
    "Switch to a different driver, or turn on the containerd image store, and try again."
)


class MultiPlatformRefused(FailedPrecondition):
    def __init__(self) -> None:
        super().__init__(MULTI_PLATFORM_REFUSAL)
