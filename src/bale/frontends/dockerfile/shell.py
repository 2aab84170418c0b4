"""Word expansion with the semantics of BuildKit's shell lexer (`frontend/dockerfile/shell`).

One `Lexer` per escape token. `process_word` expands variables and removes quotes and escapes,
keeping the result one word; `process_words` also splits on unquoted whitespace, including
whitespace that an unquoted expansion produced. Lookups use a plain mapping: a key that is
present is *set* (even when empty), a missing key is *unset*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_DIGITS = re.compile(r"\d+")
_NAME = re.compile(r"[^\W]+")
_SPECIAL_CACHE: dict[tuple[str, bool, str], re.Pattern[str]] = {}
_EOF = ""


class ShellError(Exception):
    """An expansion that BuildKit's lexer rejects; callers attach the Dockerfile location."""


@dataclass
class Expansion:
    """The result of one expansion, with the variable names it looked up and did not find."""

    value: str
    words: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


class _Words:
    __slots__ = ("cur", "in_word", "words")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.cur: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.cur:
                self.words.append("".join(self.cur))
                self.cur = []
                self.in_word = False
        else:
            self.cur.append(ch)
            self.in_word = True

    def add_raw(self, text: str) -> None:
        self.cur.append(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.cur and "".join(self.cur):
            self.words.append("".join(self.cur))
        self.cur = []
        return self.words


_MAX_NESTING = 100
# What expansion may add to a word: the kernel's limit on one argument or environment string
# (MAX_ARG_STRLEN). `ENV A=$A$A` repeated doubles A each line; without a bound a short file
# asks for more memory than the machine has.
MAX_EXPANSION = 128 * 1024


class _Scan:
    """State of one expansion: the source, the cursor and the lexer's switches."""

    def __init__(self, lexer: Lexer, src: str, env: Mapping[str, str]) -> None:
        self.src = src
        self.pos = 0
        self.env = env
        self.escape = lexer.escape
        self.raw_quotes = lexer.raw_quotes
        self.raw_escapes = lexer.raw_escapes
        self.skip_unset = lexer.skip_unset
        self.skip_quotes = lexer.skip_quotes
        self.unmatched: list[str] = []
        self.depth = 0
        self.expanded = 0  # characters the substitutions produced so far

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else _EOF

    def next(self) -> str:
        if self.pos < len(self.src):
            ch = self.src[self.pos]
            self.pos += 1
            return ch
        return _EOF

    def _to_brace(self, raw: bool) -> str:
        """The rest of a `${...}` up to its `}`; a missing `}` is BuildKit's syntax error."""
        try:
            word, _ = self.stop_on("}", raw)
        except ShellError:
            if self.peek() == _EOF:
                raise ShellError("syntax error: missing '}'") from None
            raise
        return word

    def stop_on(
        self, stop: str, raw_escapes: bool = False, want_words: bool = False
    ) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        if raw_escapes:
            self.raw_escapes = True
        try:
            return self._stop_on(stop, want_words)
        finally:
            self.raw_escapes = saved

    def _special(self, stop: str) -> re.Pattern[str]:
        key = (self.escape, self.skip_quotes, stop)
        pattern = _SPECIAL_CACHE.get(key)
        if pattern is None:
            chars = "$<" + self.escape + stop + ("" if self.skip_quotes else "'\"")
            pattern = re.compile("[" + re.escape(chars) + "]")
            _SPECIAL_CACHE[key] = pattern
        return pattern

    def _stop_on(self, stop: str, want_words: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words() if want_words else None
        src, n = self.src, len(self.src)
        special = self._special(stop)
        while self.pos < n:
            match = special.search(src, self.pos)
            end = match.start() if match is not None else n
            if end > self.pos:
                # A run of ordinary characters is copied in one piece.
                chunk = src[self.pos : end]
                result.append(chunk)
                if words is not None:
                    words.add_string(chunk)
                self.pos = end
                continue
            ch = src[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.result() if words is not None else []
            if ch == "$":
                tmp = self.dollar()
                result.append(tmp)
                if words is not None:
                    words.add_string(tmp)
            elif ch == "<":
                tmp = self.angle()
                result.append(tmp)
                if words is not None and tmp == "<":
                    words.add_string(tmp)
                elif words is not None:
                    words.add_raw(tmp)
            elif not self.skip_quotes and ch == "'":
                tmp = self.single_quote()
                result.append(tmp)
                if words is not None:
                    words.add_raw(tmp)
            elif not self.skip_quotes and ch == '"':
                tmp = self.double_quote()
                result.append(tmp)
                if words is not None:
                    words.add_raw(tmp)
            else:  # the escape token
                self.pos += 1
                if self.raw_escapes:
                    result.append(ch)
                    if words is not None:
                        words.add_raw(ch)
                if self.pos >= n:
                    break
                ch = src[self.pos]
                self.pos += 1
                result.append(ch)
                if words is not None:
                    words.add_raw(ch)
        if stop:
            raise ShellError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result() if words is not None else []

    def angle(self) -> str:
        # `<<` keeps the blanks after it in its word, so `<<  EOF` names a heredoc EOF.
        self.pos += 1
        if self.pos >= len(self.src) or self.src[self.pos] != "<":
            return "<"
        end = self.pos + 1
        while end < len(self.src) and self.src[end] in " \t\r":
            end += 1
        text = "<" + self.src[self.pos : end]
        self.pos = end
        return text

    def single_quote(self) -> str:
        # All chars between single quotes are taken as-is.
        self.pos += 1
        out: list[str] = ["'"] if self.raw_quotes else []
        end = self.src.find("'", self.pos)
        if end < 0:
            raise ShellError("unexpected end of statement while looking for matching single-quote")
        out.append(self.src[self.pos : end])
        self.pos = end + 1
        if self.raw_quotes:
            out.append("'")
        return "".join(out)

    def double_quote(self) -> str:
        # Only the escape token, `"` and `$` are special between double quotes.
        self.pos += 1
        out: list[str] = ['"'] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise ShellError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.pos += 1
                break
            if ch == "$":
                out.append(self.dollar())
                continue
            self.pos += 1
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)
        if self.raw_quotes:
            out.append('"')
        return "".join(out)

    def name(self) -> str:
        """A variable name: digits only (positional), one special parameter, or a word."""
        src, start = self.src, self.pos
        if start >= len(src):
            return ""
        first = src[start]
        if first.isdigit():
            match = _DIGITS.match(src, start)
        elif first in _SPECIAL_PARAMS:
            self.pos += 1
            return first
        else:
            match = _NAME.match(src, start)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group(0)

    def lookup(self, name: str) -> tuple[str, bool]:
        value = self.env.get(name)
        if value is None:
            return "", False
        return value, True

    def dollar(self) -> str:
        # `${a:-${b:-...}}` recurses once per level: a bound keeps hostile text from
        # exhausting the stack (no real Dockerfile nests a tenth as deep).
        self.depth += 1
        try:
            if self.depth > _MAX_NESTING:
                raise ShellError(
                    f"syntax error: substitutions nested more than {_MAX_NESTING} deep"
                )
            value = self._dollar()
        finally:
            self.depth -= 1
        self.grow(len(value))
        return value

    def grow(self, size: int) -> None:
        self.expanded += size
        if self.expanded > max(MAX_EXPANSION, len(self.src)):
            raise ShellError(
                f"expanded value longer than {MAX_EXPANSION // 1024} KiB, the longest "
                "argument or environment string a process can be given"
            )

    def _dollar(self) -> str:
        self.pos += 1  # the `$`
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            value, found = self.lookup(name)
            if not found:
                self.unmatched.append(name)
                if self.skip_unset:
                    return "$" + name
            return value
        self.pos += 1  # the `{`
        ch = self.peek()
        if ch == _EOF:
            raise ShellError("syntax error: missing '}'")
        if ch in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == _EOF:
            raise ShellError("syntax error: missing '}'")
        mods = ch
        if ch == "}":
            value, found = self.lookup(name)
            if not found:
                self.unmatched.append(name)
                if self.skip_unset:
                    return "${" + name + "}"
            return value
        if ch in (":", "+", "-", "?", "#", "%"):
            null_is_unset = False
            if ch == ":":
                null_is_unset = True
                ch = self.next()
                mods += ch
            raw = ch in ("#", "%")
            if null_is_unset and (raw or ch not in ("+", "-", "?")):
                raise ShellError(f"unsupported modifier ({mods}) in substitution")
            word = self._to_brace(raw)
            value, is_set = self.lookup(name)
            if self.skip_unset and not is_set:
                return "${" + name + mods + word + "}"
            empty = not is_set or (null_is_unset and value == "")
            if ch == "-":
                return word if empty else value
            if ch == "+":
                return "" if empty else word
            if ch == "?":
                if not is_set:
                    raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.pos += 1
            try:
                pattern, _ = self.stop_on("/", True)
            except ShellError:
                if self.peek() == _EOF:
                    raise ShellError("syntax error: missing '/' in ${}") from None
                raise
            replacement = self._to_brace(True)
            value, is_set = self.lookup(name)
            if self.skip_unset and not is_set:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            regex = re.compile(_pattern_to_regex(pattern, greedy=True))

            def substitute(_match: re.Match[str]) -> str:
                self.grow(len(replacement))  # before a hostile ${A//?/$A} squares A's size
                return replacement

            return regex.sub(substitute, value, count=0 if replace_all else 1)
        raise ShellError(f"unsupported modifier ({mods}) in substitution")


def _pattern_to_regex(pattern: str, *, greedy: bool) -> str:
    """A shell glob as a Python regex: `*`, `?`, `[...]` (with `!`/`^`), `\\x` literal."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*" if greedy else ".*?")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "!^]" else i)
            if end < 0:
                out.append(re.escape(ch))
                continue
            body = pattern[i:end]
            i = end + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append("[" + ("^" if negate else "") + body + "]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    regex = re.compile(_pattern_to_regex(pattern, greedy=True), re.DOTALL)
    cuts = range(len(value), -1, -1) if greedy else range(len(value) + 1)
    for cut in cuts:
        if regex.fullmatch(value, 0, cut):
            return value[cut:]
    return value


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    regex = re.compile(_pattern_to_regex(pattern, greedy=True), re.DOTALL)
    cuts = range(len(value) + 1) if greedy else range(len(value), -1, -1)
    for cut in cuts:
        if regex.fullmatch(value, cut):
            return value[:cut]
    return value


_PLAIN_BACKSLASH = re.compile(r"[$'\"\\]")
_PLAIN_BACKTICK = re.compile(r"[$'\"`]")


@dataclass(frozen=True)
class Lexer:
    """BuildKit's `shell.Lex`: the escape token and the switches some callers flip.

    raw_quotes keeps quote characters, raw_escapes keeps escape tokens, skip_unset leaves
    references to unset variables as written, skip_quotes treats quotes as ordinary text
    (heredoc bodies).
    """

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_unset: bool = False
    skip_quotes: bool = False

    def is_plain(self, word: str) -> bool:
        """True when expansion cannot change `word` (no `$`, quotes or escape token)."""
        plain = _PLAIN_BACKSLASH if self.escape == "\\" else _PLAIN_BACKTICK
        return plain.search(word) is None

    def expand(self, word: str, env: Mapping[str, str], *, split: bool = False) -> Expansion:
        """Expand `word`; `words` is filled only when `split` is true."""
        if self.is_plain(word) and not (split and "<<" in word):
            if split:
                return Expansion(word, word.split())
            return Expansion(word)
        scan = _Scan(self, word, env)
        value, words = scan.stop_on(_EOF, want_words=split)
        return Expansion(value, words if split else [], scan.unmatched)

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        return self.expand(word, env).value

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        return self.expand(word, env, split=True).words
