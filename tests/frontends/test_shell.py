"""Word expansion cases, one per form of BuildKit's shell lexer, and its errors."""

from __future__ import annotations

import pytest

from bale.frontends.dockerfile.shell import Lexer, ShellError

ENV = {"v": "hello", "empty": "", "path": "/usr/local/bin/app.tar.gz", "sp": "a b  c"}
LEX = Lexer()


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$v", "hello"),
        ("${v}", "hello"),
        ("${v}world", "helloworld"),
        ("$v-x", "hello-x"),
        ("$unset", ""),
        ("${unset}", ""),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", ""),
        ("$@x", "x"),
        # default values: `:-` also replaces empty, `-` only unset
        ("${unset:-w}", "w"),
        ("${empty:-w}", "w"),
        ("${v:-w}", "hello"),
        ("${unset-w}", "w"),
        ("${empty-w}", ""),
        ("${unset:-$v}", "hello"),
        ("${unset:-a b}", "a b"),
        # alternative values
        ("${v:+w}", "w"),
        ("${empty:+w}", ""),
        ("${empty+w}", "w"),
        ("${unset+w}", ""),
        # required values that are present
        ("${v:?msg}", "hello"),
        ("${empty?}", ""),
        # prefix / suffix removal with glob patterns
        ("${path#*/}", "usr/local/bin/app.tar.gz"),
        ("${path##*/}", "app.tar.gz"),
        ("${path%.*}", "/usr/local/bin/app.tar"),
        ("${path%%.*}", "/usr/local/bin/app"),
        ("${path#/usr}", "/local/bin/app.tar.gz"),
        ("${path#nomatch}", "/usr/local/bin/app.tar.gz"),
        ("${v%l?o}", "he"),
        ("${v#[gh]e}", "llo"),
        ("${v#[!h]e}", "hello"),
        # substitution, first and all
        ("${v/l/L}", "heLlo"),
        ("${v//l/L}", "heLLo"),
        ("${v/l*/X}", "heX"),
        ("${v//[eo]/_}", "h_ll_"),
        ("${v/zz/X}", "hello"),
        ("${unset/a/b}", ""),
        # quotes and escapes
        ("'$v'", "$v"),
        ('"$v"', "hello"),
        ('"a\\"b"', 'a"b'),
        ('"a\\$v"', "a$v"),
        ('"a\\nb"', "a\\nb"),
        ("\\$v", "$v"),
        ("a\\ b", "a b"),
        ("a\\", "a"),
        ("'a'\"b\"c", "abc"),
        ('""', ""),
        ("${unset:-'x y'}", "x y"),
    ],
)
def test_expansion(word: str, expected: str) -> None:
    assert LEX.process_word(word, ENV) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("a b", ["a", "b"]),
        ("$sp", ["a", "b", "c"]),
        ('"$sp"', ["a b  c"]),
        ("x$sp", ["xa", "b", "c"]),
        ("'a b' c", ["a b", "c"]),
        ("a\\ b c", ["a b", "c"]),
        ("  lead   trail  ", ["lead", "trail"]),
        ("$empty", []),
        ("80/tcp ${unset:-443}", ["80/tcp", "443"]),
    ],
)
def test_word_splitting(word: str, expected: list[str]) -> None:
    assert LEX.process_words(word, ENV) == expected


def test_backtick_escape() -> None:
    lex = Lexer("`")
    assert lex.process_word("C:\\path`$v", ENV) == "C:\\path$v"
    assert lex.process_word('"a`"b"', ENV) == 'a"b'
    assert lex.process_word("a\\$v", ENV) == "a\\hello"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${unset:?}", "unset: is not allowed to be unset"),
        ("${unset?}", "unset: is not allowed to be unset"),
        ("${empty:?}", "empty: is not allowed to be empty"),
        ("${unset:?custom message}", "unset: custom message"),
        ("${empty:?need it}", "empty: need it"),
        ("${v", "syntax error: missing '}'"),
        ("${v:-abc", "syntax error: missing '}'"),
        ("${", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:x}", "syntax error: bad substitution"),
        ("${v:0:2}", "unsupported modifier (:0) in substitution"),
        ("${v:#x}", "unsupported modifier (:#) in substitution"),
        ("${v^x}", "unsupported modifier (^) in substitution"),
        ("${v/a", "syntax error: missing '/' in ${}"),
        ("${v/a/b", "syntax error: missing '}'"),
        ("'abc", "unexpected end of statement while looking for matching single-quote"),
        ('"abc', "unexpected end of statement while looking for matching double-quote"),
    ],
)
def test_errors(word: str, message: str) -> None:
    with pytest.raises(ShellError) as info:
        LEX.process_word(word, ENV)
    assert str(info.value) == message


def test_unmatched_names_are_reported() -> None:
    result = LEX.expand("$a ${b} ${c:-x} $v", ENV)
    assert result.unmatched == ["a", "b"]


def test_raw_modes_keep_quotes_and_escapes() -> None:
    raw = Lexer(raw_quotes=True, raw_escapes=True)
    assert raw.process_word("'a' \"$v\" \\x", ENV) == "'a' \"hello\" \\x"
    heredoc = Lexer(skip_quotes=True)
    assert heredoc.process_word("say '$v' \"$v\"", ENV) == "say 'hello' \"hello\""


def test_skip_unset_leaves_references() -> None:
    lex = Lexer(skip_unset=True)
    assert lex.process_word("$v $nope ${nope} ${nope:-x}", ENV) == "hello $nope ${nope} ${nope:-x}"
