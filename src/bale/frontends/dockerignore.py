""".dockerignore files, read and matched with Docker's rules (moby/patternmatcher).

Rules: lines starting with `#` are comments; patterns are trimmed and cleaned (`./a/` → `a`,
a leading `/` dropped); `*` and `?` never match `/`, `**` matches any number of directories;
`!` re-includes; the last matching pattern wins; a pattern matching a directory excludes
everything below it. The context root itself is never excluded (a bare `.` is ignored).

`<name>.dockerignore` beside the Dockerfile (`Dockerfile.dockerignore`,
`app.Dockerfile.dockerignore`) takes precedence over `.dockerignore` in the context.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bale.errors import InvalidArgument
from bale.trees import walk

_REGEX_SPECIAL = set(".+()|{}$^")


@dataclass(frozen=True)
class IgnorePattern:
    text: str  # cleaned, without the `!`
    exclusion: bool  # a `!` pattern: matching paths are included again
    regex: re.Pattern[str]
    depth: int  # number of path components, for parent-directory matching

    def matches(self, path: str) -> bool:
        if self.regex.match(path):
            return True
        # A pattern that names a directory also matches everything below it.
        parts = path.split("/")
        if len(parts) > self.depth:
            return self.regex.match("/".join(parts[: self.depth])) is not None
        return False


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        elif ch == "[":
            if pattern[i : i + 1] == "!":
                out.append("[^")
                i += 1
            else:
                out.append("[")
        else:
            out.append(ch)
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f"invalid .dockerignore pattern {pattern!r}: {exc}") from None


def _clean(pattern: str) -> str:
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


@dataclass(frozen=True)
class DockerIgnore:
    patterns: tuple[IgnorePattern, ...] = ()

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        if text.startswith("\ufeff"):
            text = text[1:]
        patterns: list[IgnorePattern] = []
        for raw in text.splitlines():
            if raw.startswith("#"):
                continue
            line = raw.strip()
            if not line:
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
                if not line:
                    # moby/patternmatcher refuses it; BuildKit fails the build.
                    raise InvalidArgument(
                        'failed parsing .dockerignore: illegal exclusion pattern: "!"',
                        hint="a `!` line re-includes a pattern: write `!pattern`",
                    )
            line = _clean(line)
            if line in (".", "/"):
                continue
            regex = _compile(line)
            patterns.append(IgnorePattern(line, exclusion, regex, line.count("/") + 1))
        return cls(tuple(patterns))

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        try:
            return cls.parse(path.read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether a context-relative, `/`-separated path is left out of the context."""
        path = _clean(path)
        if path in (".", "/", ""):
            return False
        result = False
        for pattern in self.patterns:
            if pattern.matches(path):
                result = not pattern.exclusion
        return result

    def walk(self, root: Path) -> Iterator[str]:
        """Context-relative paths (files, links and directories) that are not excluded.

        An excluded directory is skipped whole unless a `!` pattern could re-include
        something inside it, as Docker does."""
        for dirpath, dirnames, filenames in walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
            keep: list[str] = []
            for name in sorted(dirnames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if self.excluded(rel):
                    if self._may_reinclude(rel):
                        keep.append(name)
                    continue
                keep.append(name)
                yield rel
            dirnames[:] = keep
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if not self.excluded(rel):
                    yield rel

    def _may_reinclude(self, directory: str) -> bool:
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            text = pattern.text
            if text.startswith(directory + "/") or "**" in text or text.startswith("*"):
                return True
            prefix = text.split("/")[: directory.count("/") + 1]
            if _compile("/".join(prefix)).match(directory):
                return True
        return False


def ignore_file_for(context: Path, dockerfile: Path | None = None) -> Path | None:
    """The ignore file that applies: `<dockerfile>.dockerignore` beside the Dockerfile first,
    then `.dockerignore` at the context root; None when there is neither."""
    if dockerfile is not None:
        beside = dockerfile.with_name(dockerfile.name + ".dockerignore")
        if beside.is_file():
            return beside
    default = context / ".dockerignore"
    return default if default.is_file() else None


def load_ignore(context: Path, dockerfile: Path | None = None) -> DockerIgnore:
    path = ignore_file_for(context, dockerfile)
    return DockerIgnore.read(path) if path is not None else DockerIgnore()
