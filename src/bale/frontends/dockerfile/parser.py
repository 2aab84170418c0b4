"""Dockerfile text → AST nodes with 1-based line ranges, as BuildKit's `parser.Parse` builds them.

What this gets right that a line-oriented editor does not: parser directives only in the
leading comment block; the escape directive (backslash or backtick); continuation lines with
blank or comment lines inside them; a doubled escape at end of line is not a continuation;
heredocs (`<<EOF`, `<<-EOF`, quoted names, several per line) in RUN/COPY/ADD; JSON arrays
with BuildKit's fallback to shell form and its error for non-string arrays.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from bale.errors import DockerfileError, SourceRange
from bale.frontends.dockerfile.shell import Lexer, ShellError

DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_HEREDOC = re.compile(r"^([0-9]*)<<(-?)[ \t]*([^<]*)$")
_HEREDOC_KEYWORDS = frozenset(("run", "copy", "add"))
NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"

# How each instruction's arguments are split (BuildKit's dispatch table in parser.go).
KEYWORDS: dict[str, str] = {
    "add": "json_list",
    "arg": "name_or_name_val",
    "cmd": "maybe_json",
    "copy": "json_list",
    "entrypoint": "maybe_json",
    "env": "env",
    "expose": "whitespace",
    "from": "whitespace",
    "healthcheck": "health",
    "label": "label",
    "maintainer": "string",
    "onbuild": "sub",
    "run": "maybe_json",
    "shell": "maybe_json",
    "stopsignal": "string",
    "user": "string",
    "volume": "json_list",
    "workdir": "string",
}


@dataclass(frozen=True)
class Heredoc:
    """One `<<NAME` body. `expand` is false when the name was quoted; `chomp` for `<<-`."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    fd: int = 0

    def data(self) -> str:
        """The body, with leading tabs removed from every line for `<<-`."""
        if not self.chomp:
            return self.content
        return "".join(line.lstrip("\t") for line in self.content.splitlines(keepends=True))


@dataclass(frozen=True)
class Node:
    """One instruction. `args` is split the way BuildKit splits this keyword's arguments:
    a single string, whitespace/JSON words, `key, value` pairs (ENV/LABEL), or for
    HEALTHCHECK the type followed by the command words. `child` holds ONBUILD's trigger."""

    keyword: str
    original: str
    flags: tuple[str, ...]
    args: tuple[str, ...]
    start: int
    end: int
    json: bool = False
    legacy: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    comments: tuple[str, ...] = ()
    child: Node | None = None
    name: str = ""  # the keyword, lowercased

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.keyword.lower())


@dataclass(frozen=True)
class Warning:
    """A parser-level finding that is not an error (BuildKit reports these as lint)."""

    rule: str
    message: str
    start: int
    end: int


@dataclass(frozen=True)
class ParsedDockerfile:
    filename: str
    lines: tuple[str, ...]
    nodes: tuple[Node, ...]
    directives: tuple[tuple[str, str, int], ...] = ()
    escape: str = "\\"
    warnings: tuple[Warning, ...] = field(default=())

    def directive(self, name: str) -> str | None:
        for key, value, _line in self.directives:
            if key == name:
                return value
        return None

    def error(
        self, message: str, start: int, end: int | None = None, hint: str = ""
    ) -> DockerfileError:
        return DockerfileError(
            message,
            source=SourceRange(self.filename, start, end if end is not None else start),
            lines=self.lines,
            hint=hint,
        )


class _Directives:
    def __init__(self) -> None:
        self.done = False
        self.seen: dict[str, tuple[str, int]] = {}
        self.escape = "\\"
        self.continuation = _continuation_regex("\\")

    def parse_line(self, line: str, number: int) -> str | None:
        """Returns an error message, or None."""
        if self.done:
            return None
        match = _DIRECTIVE.match(line)
        if match is None:
            self.done = True
            return None
        key = match.group(1).lower()
        if key not in DIRECTIVES:
            self.done = True
            return None
        if key in self.seen:
            return f"only one {key} parser directive can be used"
        value = match.group(2)
        if key == "escape":
            if value not in ("`", "\\"):
                return f"invalid escape token '{value}' does not match ` or \\"
            self.escape = value
            self.continuation = _continuation_regex(value)
        self.seen[key] = (value, number)
        return None


def _continuation_regex(escape: str) -> re.Pattern[str]:
    # The escape token ends a line only when it is not itself escaped, or when it stands
    # alone on its line.
    e = re.escape(escape)
    return re.compile(r"([^" + e + r"])" + e + r"[ \t]*$|^" + e + r"[ \t]*$")


def parse(text: str, filename: str = "Dockerfile") -> ParsedDockerfile:
    """Parse Dockerfile text. Raises DockerfileError with the line range of the problem."""
    if text.startswith("\ufeff"):
        text = text[1:]
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    lines = tuple(line[:-1] if line.endswith("\r") else line for line in raw)

    def fail(message: str, start: int, end: int | None = None) -> DockerfileError:
        return DockerfileError(
            f"dockerfile parse error on line {start}: {message}",
            source=SourceRange(filename, start, end if end is not None else start),
            lines=lines,
        )

    d = _Directives()
    nodes: list[Node] = []
    warnings: list[Warning] = []
    comments: list[str] = []
    total = len(lines)
    i = 0
    escape = d.escape
    while i < total:
        line = lines[i].lstrip()
        is_directive = False
        if not d.done:
            before = len(d.seen)
            problem = d.parse_line(line, i + 1)
            if problem is not None:
                raise fail(problem, i + 1)
            is_directive = len(d.seen) > before
            escape = d.escape
        i += 1
        if not line:
            continue
        if line[0] == "#":
            # Directive lines are not comments that describe the next instruction.
            if not is_directive:
                comment = line[1:].strip()
                if comment == "":
                    comments = []
                else:
                    comments.append(comment)
            continue
        start = i
        cont = d.continuation
        if line.rstrip(" \t").endswith(escape):
            joined, ended = _trim_continuation(line, cont)
        else:
            joined, ended = line, True
        parts = [joined]
        empty_continuation = False
        while not ended and i < total:
            current = lines[i]
            if not d.done:
                problem = d.parse_line(current, i + 1)
                if problem is not None:
                    raise fail(problem, i + 1)
            i += 1
            stripped = current.lstrip()
            if stripped.startswith("#"):
                continue
            if not stripped:
                empty_continuation = True
                continue
            if current.rstrip(" \t").endswith(escape):
                piece, ended = _trim_continuation(current, cont)
            else:
                piece, ended = current, True
            parts.append(piece)
        logical = "".join(parts)
        if empty_continuation:
            warnings.append(
                # BuildKit places it on the instruction's last line.
                Warning("NoEmptyContinuation", "Empty continuation line", i, i)
            )
        try:
            node = _node_from_line(logical, d.escape, start, i, tuple(comments))
        except ParseFailure as exc:
            raise fail(str(exc), start, i) from None
        target = node.child if node.name == "onbuild" and node.child is not None else node
        if target.name in _HEREDOC_KEYWORDS and not target.json and "<<" in logical:
            try:
                docs = heredocs_from_line(logical)
            except ParseFailure as exc:
                raise fail(str(exc), start, i) from None
            bodies: list[Heredoc] = []
            for doc in docs:
                content: list[str] = []
                terminated = False
                while i < total:
                    current = lines[i]
                    i += 1
                    candidate = current.lstrip("\t") if doc.chomp else current
                    if candidate == doc.name:
                        terminated = True
                        break
                    content.append(current + "\n")
                if not terminated:
                    raise fail("unterminated heredoc", start, i)
                bodies.append(Heredoc(doc.name, "".join(content), doc.expand, doc.chomp, doc.fd))
            if node is target:
                node = replace(node, heredocs=tuple(bodies), end=i)
            else:
                child = replace(target, heredocs=tuple(bodies), end=i)
                node = replace(node, child=child, end=i)
        nodes.append(node)
        comments = []
    if not nodes:
        raise DockerfileError(
            f"dockerfile parse error on line {max(total, 1)}: file with no instructions",
            source=SourceRange(filename, max(total, 1), max(total, 1)) if total else None,
            lines=lines,
        )
    directives = tuple(sorted(((k, v, n) for k, (v, n) in d.seen.items()), key=lambda t: t[2]))
    return ParsedDockerfile(filename, lines, tuple(nodes), directives, d.escape, tuple(warnings))


def _trim_continuation(line: str, regex: re.Pattern[str]) -> tuple[str, bool]:
    match = regex.search(line)
    if match is None:
        return line, True
    return line[: match.start()] + (match.group(1) or ""), False


class ParseFailure(Exception):
    """A parse problem without a location yet; callers attach the node's lines."""


def suggest(
    word: str, candidates: list[str] | tuple[str, ...], *, case_sensitive: bool = False
) -> str:
    """` (did you mean X?)` for the nearest candidate within two edits, else ""; BuildKit's
    suggest.Search (an exact match means the word was not the problem)."""
    value = word if case_sensitive else word.lower()
    match, best = "", 3
    for candidate in candidates:
        option = candidate if case_sensitive else candidate.lower()
        if option == value:
            return ""
        if abs(len(option) - len(value)) >= best or len(value) > 256:
            continue
        distance = _levenshtein(value, option, best)
        if distance < best:
            match, best = (candidate if case_sensitive else _match_case(option, word)), distance
    return f" (did you mean {match}?)" if match else ""


def _match_case(option: str, original: str) -> str:
    if original == original.lower():
        return option.lower()
    if original == original.upper():
        return option.upper()
    return option


def _levenshtein(a: str, b: str, limit: int) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) >= limit:
            return limit
        previous = current
    return previous[-1]


_WHITESPACE = re.compile(r"[ \t\r\n\v\f]+")


def _node_from_line(
    line: str, escape: str, start: int, end: int, comments: tuple[str, ...]
) -> Node:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    keyword = parts[0]
    flags: list[str] = []
    rest = ""
    if len(parts) == 2:
        rest, flags = extract_flags(parts[1])
        rest = rest.strip()
    kind = KEYWORDS.get(keyword.lower(), "ignore")
    is_json = False
    legacy = False
    child: Node | None = None
    args: tuple[str, ...]
    if kind == "maybe_json":
        args, is_json = _maybe_json(rest)
    elif kind == "json_list":
        args, is_json = _maybe_json_list(rest, escape)
    elif kind in ("whitespace", "ignore"):
        args = tuple(_WHITESPACE.split(rest)) if rest else ()
    elif kind == "string":
        args = (rest,) if rest else ()
    elif kind in ("env", "label"):
        args, legacy = _name_val(rest, keyword.upper(), escape)
    elif kind == "name_or_name_val":
        args = tuple(parse_words(rest, escape))
    elif kind == "health":
        args, is_json = _health(rest)
    else:  # "sub": ONBUILD's trigger is an instruction of its own
        args = ()
        if rest:
            child = _node_from_line(rest, escape, start, end, ())
    return Node(
        keyword,
        line,
        tuple(flags),
        args,
        start,
        end,
        is_json,
        legacy,
        (),
        comments,
        child,
        keyword.lower(),
    )


def _parse_json(rest: str) -> tuple[str, ...] | None:
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise ParseFailure(NOT_STRING_ARRAY)
    return tuple(value)


def _maybe_json(rest: str) -> tuple[tuple[str, ...], bool]:
    if rest == "":
        return (), False
    words = _parse_json(rest)
    if words is not None:
        return words, True
    return (rest,), False


def _maybe_json_list(rest: str, escape: str) -> tuple[tuple[str, ...], bool]:
    words = _parse_json(rest)
    if words is not None:
        return words, True
    return (tuple(_WHITESPACE.split(rest)) if rest else ()), False


def _health(rest: str) -> tuple[tuple[str, ...], bool]:
    parts = _WHITESPACE.split(rest, maxsplit=1)
    if not rest:
        return (), False
    typ = parts[0]
    cmd, is_json = _maybe_json(parts[1].lstrip() if len(parts) > 1 else "")
    return (typ, *cmd), is_json


def _name_val(rest: str, key: str, escape: str) -> tuple[tuple[str, ...], bool]:
    words = parse_words(rest, escape)
    if not words:
        raise ParseFailure(f"{key} requires at least one argument")
    if "=" not in words[0]:
        # Legacy `KEY name value`: the value is the rest of the line, as written.
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ParseFailure(f"{key} must have two arguments")
        return (parts[0], parts[1]), True
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise ParseFailure(
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        name, value = word.split("=", 1)
        out.extend((name, value))
    return tuple(out), False


_QUOTES_OR_ESCAPES = re.compile(r"[\"'\\`]")
_SIMPLE_FLAGS = re.compile(r"(?:--[^\s\"'\\]*(?:\s+|$))+")


_WORD_BACKSLASH = re.compile(r"""(?:[^\s"'\\]+|\\.|"(?:[^"\\]|\\.)*"|'[^']*')+""", re.DOTALL)


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (BuildKit's parseWords)."""
    if _QUOTES_OR_ESCAPES.search(rest) is None:
        return rest.split()
    if escape == "\\":
        # Closed quotes and escapes: one regex pass; anything unusual takes the exact path.
        words = _WORD_BACKSLASH.findall(rest)
        if _joined_matches(rest, words):
            return words
    return _parse_words(rest, escape)


def _joined_matches(rest: str, words: list[str]) -> bool:
    """Whether the words cover `rest` with only whitespace between them."""
    pos = 0
    for word in words:
        start = rest.find(word, pos)
        if start < 0 or rest[pos:start].strip():
            return False
        pos = start + len(word)
    return not rest[pos:].strip()


def _parse_words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords, character by character."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    quote = ""
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word = []
            blank_ok = False
            in_word = False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
        if ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if (in_word or quote) and (blank_ok or word):
        words.append("".join(word))
    return words


def extract_flags(line: str) -> tuple[str, list[str]]:
    """Leading `--name[=value]` words (quotes removed) and the rest of the line."""
    if not line.lstrip().startswith("--"):
        return line.lstrip(), []
    simple = _SIMPLE_FLAGS.match(line.lstrip())
    if simple is not None:
        # Flags without quotes or backslashes split on whitespace; the rest is untouched.
        stripped = line.lstrip()
        found = simple.group(0).split()
        rest = stripped[simple.end() :]
        if "--" not in found and not rest.startswith("-") and rest[:1] not in ('"', "'", "\\"):
            return rest, found
    return _extract_flags(line)


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """BuildKit's extractBuilderFlags, character by character (quotes, escapes, `--`)."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    in_word = False
    i, n = 0, len(line)
    while i <= n:
        ch = line[i] if i < n else ""
        if not in_word:
            if i == n:
                break
            if ch.isspace():
                i += 1
                continue
            if ch != "-" or i + 1 == n or line[i + 1] != "-":
                return line[i:], words
            in_word = True
        if i == n:
            text = "".join(word)
            if text != "--" and (blank_ok or word):
                words.append(text)
            break
        if quote:
            if ch == quote:
                quote = ""
                i += 1
                continue
            if ch == "\\":
                if i + 1 == n:
                    quote = ""
                    i += 1
                    continue
                i += 1
                ch = line[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            text = "".join(word)
            in_word = False
            if text == "--":
                return line[i:], words
            if blank_ok or word:
                words.append(text)
            word = []
            blank_ok = False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
            i += 1
            continue
        if ch == "\\":
            if i + 1 == n:
                i += 1
                continue
            i += 1
            ch = line[i]
        word.append(ch)
        i += 1
    return "", words


@dataclass(frozen=True)
class _HeredocName:
    name: str
    expand: bool
    chomp: bool
    fd: int


# Heredoc names are found with unset variables left as written (BuildKit's SkipUnsetEnv).
_RAW_LEXER = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
_QUOTE_LEXER = Lexer("\\", skip_unset=True)
_EMPTY: dict[str, str] = {}


_MAX_FD = 2**64 - 1


def _heredoc_fd(digits: str) -> int:
    # BuildKit's ParseUint with its error ignored: a number too big for 64 bits is the
    # largest one (and is never converted, whatever its length).
    if not digits:
        return 0
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 and int(digits) <= _MAX_FD else _MAX_FD


def parse_heredoc(word: str) -> _HeredocName | None:
    """`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` → its name and switches; other words → None."""
    match = _HEREDOC.match(word)
    if match is None or match.group(3) == "":
        return None
    fd = _heredoc_fd(match.group(1))
    rest = match.group(3)
    try:
        words = _QUOTE_LEXER.process_words(rest, _EMPTY)
        raw_words = _RAW_LEXER.process_words(rest, _EMPTY)
    except ShellError as exc:
        raise ParseFailure(str(exc)) from None
    if len(words) != 1:
        return None
    if len(raw_words) != 1:
        raise ParseFailure(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw_words[0].count("'") + raw_words[0].count('"')
    return _HeredocName(name, quotes == raw_quotes, match.group(2) == "-", fd)


def heredocs_from_line(line: str) -> list[_HeredocName]:
    try:
        words = _RAW_LEXER.process_words(line, _EMPTY)
    except ShellError:
        return []
    out: list[_HeredocName] = []
    for word in words:
        doc = parse_heredoc(word)
        if doc is not None:
            out.append(doc)
    return out
