"""String templates: `${expr}`, `%{ if }` / `%{ for }` directives, `$${` / `%%{` escapes.

The HCL grammar splits quoted strings into parts itself; heredocs and JSON strings arrive as
raw text and are scanned here. Both paths end in `assemble`, which applies `~` strip markers
and nests the directives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bale.frontends.bake.syntax import (
    Expr,
    ForDirective,
    IfDirective,
    Interp,
    Range,
    TemplatePart,
)


class TemplateSyntaxError(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass
class Piece:
    """One flat template element before nesting."""

    kind: str  # lit, interp, if, else, endif, for, endfor
    text: str = ""
    expr: Expr | None = None
    key_var: str | None = None
    value_var: str = ""
    strip_left: bool = False
    strip_right: bool = False
    line: int = 0
    col: int = 0


# Parses an expression's source text found at (line, col) of the enclosing file.
ExprParser = Callable[[str, int, int], Expr]


def scan(text: str, line: int, col: int, parse_expr: ExprParser) -> list[Piece]:
    """Split raw template text (heredoc body, JSON string) into pieces."""
    pieces: list[Piece] = []
    literal: list[str] = []
    i = 0
    cur_line, cur_col = line, col

    def advance(upto: int) -> None:
        nonlocal i, cur_line, cur_col
        chunk = text[i:upto]
        newlines = chunk.count("\n")
        if newlines:
            cur_line += newlines
            cur_col = len(chunk) - chunk.rfind("\n")
        else:
            cur_col += len(chunk)
        i = upto

    while i < len(text):
        ch = text[i]
        if ch in "$%" and text.startswith(ch + ch + "{", i):
            literal.append(ch + "{")
            advance(i + 3)
            continue
        if ch in "$%" and text.startswith(ch + "{", i):
            if literal:
                pieces.append(Piece("lit", text="".join(literal)))
                literal = []
            start_line, start_col = cur_line, cur_col
            end = _matching_brace(text, i + 2)
            if end < 0:
                raise TemplateSyntaxError(
                    "Unterminated template string; the template sequence is not closed",
                    start_line,
                    start_col,
                )
            inner = text[i + 2 : end]
            strip_left = inner.startswith("~")
            strip_right = inner.endswith("~")
            body = inner[1 if strip_left else 0 : len(inner) - 1 if strip_right else len(inner)]
            # Position of the body inside the file, for the expression's own ranges.
            offset = 2 + (1 if strip_left else 0)
            advance(i + offset)
            body_line, body_col = cur_line, cur_col
            if ch == "$":
                piece = Piece("interp", expr=parse_expr(body, body_line, body_col))
            else:
                piece = _directive(body, body_line, body_col, parse_expr)
            piece.strip_left, piece.strip_right = strip_left, strip_right
            piece.line, piece.col = start_line, start_col
            pieces.append(piece)
            advance(end + 1)
            continue
        literal.append(ch)
        advance(i + 1)
    if literal:
        pieces.append(Piece("lit", text="".join(literal)))
    return pieces


def _matching_brace(text: str, start: int) -> int:
    """Index of the `}` closing a sequence whose body starts at `start`, or -1."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i + 1)
            if i < 0:
                return -1
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _skip_string(text: str, i: int) -> int:
    """Index just past the quoted string whose body starts at `i` (nested templates too)."""
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        if ch in "$%" and text.startswith(ch + "{", i) and not text.startswith(ch + ch, i - 1):
            end = _matching_brace(text, i + 2)
            if end < 0:
                return -1
            i = end + 1
            continue
        i += 1
    return -1


def _directive(body: str, line: int, col: int, parse_expr: ExprParser) -> Piece:
    words = body.strip()
    lead = len(body) - len(body.lstrip())
    if words == "else":
        return Piece("else")
    if words == "endif":
        return Piece("endif")
    if words == "endfor":
        return Piece("endfor")
    if words.startswith("if ") or words.startswith("if\t"):
        expr_text = body[lead + 2 :]
        return Piece("if", expr=parse_expr(expr_text, line, col + lead + 2))
    if words.startswith("for ") or words.startswith("for\t"):
        head, sep, _rest = words[3:].partition(" in ")
        if not sep:
            raise TemplateSyntaxError(
                "Invalid 'for' directive; expected `for NAME in EXPR`", line, col
            )
        names = [n.strip() for n in head.split(",")]
        if len(names) > 2 or not all(n.isidentifier() for n in names):
            raise TemplateSyntaxError(
                "Invalid 'for' directive; expected one or two iterator names", line, col
            )
        offset = body.find(" in ") + 4
        expr = parse_expr(body[offset:], line, col + offset)
        if len(names) == 2:
            return Piece("for", expr=expr, key_var=names[0], value_var=names[1])
        return Piece("for", expr=expr, value_var=names[0])
    raise TemplateSyntaxError(
        f"Invalid template directive; unknown directive {words.split()[0] if words else ''!r}",
        line,
        col,
    )


def assemble(pieces: list[Piece], rng: Range) -> tuple[TemplatePart, ...]:
    """Apply strip markers and nest directives into template parts."""
    texts: list[Piece] = []
    for idx, piece in enumerate(pieces):
        if piece.kind == "lit":
            text = piece.text
            if idx > 0 and pieces[idx - 1].kind != "lit" and pieces[idx - 1].strip_right:
                text = text.lstrip()
            if (
                idx + 1 < len(pieces)
                and pieces[idx + 1].kind != "lit"
                and pieces[idx + 1].strip_left
            ):
                text = text.rstrip()
            texts.append(Piece("lit", text=text))
        else:
            texts.append(piece)
    parts, pos, closer = _nest(texts, 0, rng)
    if closer is not None:
        raise TemplateSyntaxError(
            f"Unexpected {closer.kind} directive; there is no matching opening directive",
            closer.line or rng.line,
            closer.col or rng.col,
        )
    del pos
    return parts


def _nest(
    pieces: list[Piece], pos: int, rng: Range
) -> tuple[tuple[TemplatePart, ...], int, Piece | None]:
    out: list[TemplatePart] = []
    while pos < len(pieces):
        piece = pieces[pos]
        pos += 1
        if piece.kind == "lit":
            if piece.text:
                out.append(piece.text)
        elif piece.kind == "interp":
            assert piece.expr is not None
            out.append(Interp(piece.expr))
        elif piece.kind == "if":
            assert piece.expr is not None
            then, pos, closer = _nest(pieces, pos, rng)
            otherwise: tuple[TemplatePart, ...] = ()
            if closer is not None and closer.kind == "else":
                otherwise, pos, closer = _nest(pieces, pos, rng)
            if closer is None or closer.kind != "endif":
                raise TemplateSyntaxError(
                    "Unterminated template directive; the 'if' has no matching 'endif'",
                    piece.line or rng.line,
                    piece.col or rng.col,
                )
            out.append(IfDirective(piece.expr, then, otherwise))
        elif piece.kind == "for":
            assert piece.expr is not None
            body, pos, closer = _nest(pieces, pos, rng)
            if closer is None or closer.kind != "endfor":
                raise TemplateSyntaxError(
                    "Unterminated template directive; the 'for' has no matching 'endfor'",
                    piece.line or rng.line,
                    piece.col or rng.col,
                )
            out.append(ForDirective(piece.key_var, piece.value_var, piece.expr, body))
        else:
            return tuple(out), pos, piece
    return tuple(out), pos, None


HCL_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def unescape(raw: str) -> str:
    """Decode the backslash escapes of a quoted HCL string chunk."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\" or i + 1 >= len(raw):
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in HCL_ESCAPES:
            out.append(HCL_ESCAPES[nxt])
            i += 2
        elif nxt in "uU":
            width = 4 if nxt == "u" else 8
            digits = raw[i + 2 : i + 2 + width]
            try:
                out.append(chr(int(digits, 16)))
            except ValueError as exc:
                raise ValueError(f"invalid escape sequence \\{nxt}{digits}") from exc
            i += 2 + width
        else:
            raise ValueError(f"invalid escape sequence \\{nxt}")
    return "".join(out)
