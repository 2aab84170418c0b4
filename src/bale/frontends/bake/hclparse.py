"""HCL native syntax: python-hcl2's Lark parse tree turned into `syntax` nodes.

python-hcl2 parses; it does not evaluate. Its raw Lark tree (with positions) is walked here.
Lark's exceptions become `HCLSyntaxError` with a line and column, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from bale.frontends.bake import templates
from bale.frontends.bake.syntax import (
    Attribute,
    Binary,
    Block,
    Body,
    Call,
    Conditional,
    Expr,
    ForExpr,
    GetAttr,
    Index,
    Literal,
    ObjectCons,
    Parens,
    Range,
    Splat,
    Template,
    TupleCons,
    Unary,
    Variable,
)

# Deeper nesting than this is refused: the walk is recursive and untrusted input must not
# exhaust the interpreter's stack.
MAX_DEPTH = 128

_WRAP = "__bake_expr__ = ("


class HCLSyntaxError(Exception):
    def __init__(self, message: str, filename: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.line = line
        self.col = col


def _lark() -> Any:
    import hcl2.api

    # python-hcl2 keeps one cached LALR parser; it has no public accessor for the raw tree parser.
    return getattr(hcl2.api, "_get_parser")()  # noqa: B009


def parse_file(text: str, filename: str) -> Body:
    """Parse a whole HCL file into a body."""
    tree = _run_parser(text, filename, lambda line, col: (line, col))
    walker = _Walker(filename, lambda line, col: (line, col))
    body = tree.children[0]
    lines = text.splitlines() or [""]
    end = Range(filename, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 1)
    return walker.body(body, end)


def parse_expression(text: str, filename: str, line: int, col: int) -> Expr:
    """Parse the source of one expression found at (line, col) of `filename`."""
    shift = len(_WRAP)

    def position(lark_line: int, lark_col: int) -> tuple[int, int]:
        if lark_line == 1:
            return line, col + lark_col - 1 - shift
        return line + lark_line - 1, lark_col

    tree = _run_parser(_WRAP + text + ")", filename, position)
    walker = _Walker(filename, position)
    attrs = [c for c in tree.children[0].children if _name(c) == "attribute"]
    if len(attrs) != 1:
        raise HCLSyntaxError(
            "Invalid expression; extra characters after expression", filename, line, col
        )
    expr = walker.expr(attrs[0].children[-1], 0)
    return expr.inner if isinstance(expr, Parens) else expr


def _run_parser(text: str, filename: str, position: Callable[[int, int], tuple[int, int]]) -> Any:
    from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    try:
        return _lark().parse(text + "\n")
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            line, col = position(*_end(text))
            raise HCLSyntaxError("Unexpected end of file", filename, line, col) from None
        line, col = position(exc.line, exc.column)
        shown = str(token).strip() or token.type
        expected = _expected(exc.expected)
        raise HCLSyntaxError(
            f"Invalid expression; unexpected {shown!r}{expected}", filename, line, col
        ) from None
    except UnexpectedCharacters as exc:
        line, col = position(exc.line, exc.column)
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        raise HCLSyntaxError(
            f"Invalid character; unexpected {char!r}", filename, line, col
        ) from None
    except UnexpectedEOF:
        line, col = position(*_end(text))
        raise HCLSyntaxError("Unexpected end of file", filename, line, col) from None
    except LarkError as exc:
        raise HCLSyntaxError(f"Invalid syntax: {exc}", filename, 1, 1) from None
    except RecursionError:
        raise HCLSyntaxError("Invalid expression; nested too deeply", filename, 1, 1) from None


def _end(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


_TOKEN_WORDS = {
    "RBRACE": "'}'",
    "LBRACE": "'{'",
    "RSQB": "']'",
    "RPAR": "')'",
    "EQ": "'='",
    "COMMA": "','",
    "NL_OR_COMMENT": "a newline",
}


def _expected(names: set[str]) -> str:
    if not names or not all(n in _TOKEN_WORDS for n in names):
        return ""
    words = sorted({_TOKEN_WORDS[n] for n in names})
    return f", expected {' or '.join(words)}"


def _name(node: Any) -> str:
    data = getattr(node, "data", None)
    return str(data) if data is not None else ""


def _is_tree(node: Any) -> bool:
    return hasattr(node, "data")


_EXPR_RULES = {
    "conditional",
    "binary_op",
    "unary_op",
    "expr_term",
    "int_lit",
    "float_lit",
    "string",
    "template_string",
    "tuple",
    "object",
    "identifier",
    "literal_value",
    "function_call",
    "heredoc_template",
    "heredoc_template_trim",
    "index_expr_term",
    "get_attr_expr_term",
    "attr_splat_expr_term",
    "full_splat_expr_term",
    "for_tuple_expr",
    "for_object_expr",
}


class _Walker:
    def __init__(self, filename: str, position: Callable[[int, int], tuple[int, int]]) -> None:
        self.filename = filename
        self.position = position

    def rng(self, node: Any) -> Range:
        if _is_tree(node):
            meta = node.meta
            if getattr(meta, "empty", True):
                return Range(self.filename, 1, 1, 1, 1)
            line, col = self.position(meta.line, meta.column)
            end_line, end_col = self.position(meta.end_line, meta.end_column)
        else:
            line, col = self.position(node.line, node.column)
            end_line, end_col = self.position(node.end_line, node.end_column)
        return Range(self.filename, line, col, end_line, end_col)

    def fail(self, message: str, node: Any) -> HCLSyntaxError:
        r = self.rng(node)
        return HCLSyntaxError(message, self.filename, r.line, r.col)

    # Bodies -------------------------------------------------------------------------

    def body(self, node: Any, end: Range, depth: int = 0) -> Body:
        if depth > MAX_DEPTH:
            raise self.fail("Invalid block; blocks nested too deeply", node)
        attributes: list[Attribute] = []
        blocks: list[Block] = []
        seen: dict[str, Range] = {}
        for child in node.children:
            kind = _name(child)
            if kind == "attribute":
                name_node = child.children[0]
                name = self.word(name_node)
                name_rng = self.rng(name_node)
                if name in seen:
                    prev = seen[name]
                    raise HCLSyntaxError(
                        f'Attribute redefined; the argument "{name}" was already set at '
                        f"{prev.filename}:{prev.line},{prev.col}-{prev.end_col}. Each argument "
                        "may be set only once.",
                        self.filename,
                        name_rng.line,
                        name_rng.col,
                    )
                seen[name] = name_rng
                expr = self.expr(child.children[-1], 0)
                attributes.append(Attribute(name, expr, self.rng(child), name_rng))
            elif kind == "block":
                blocks.append(self.block(child, depth))
        return Body(tuple(attributes), tuple(blocks), end)

    def block(self, node: Any, depth: int) -> Block:
        children = [c for c in node.children if _is_tree(c) and _name(c) != "new_line_or_comment"]
        type_node, *label_nodes, body_node = children
        labels: list[str] = []
        label_rngs: list[Range] = []
        for label in label_nodes:
            if _name(label) == "string":
                value = self.expr(label, 0)
                if not isinstance(value, Template) or not all(
                    isinstance(p, str) for p in value.parts
                ):
                    raise self.fail("Invalid block label; templates are not allowed here", label)
                labels.append("".join(p for p in value.parts if isinstance(p, str)))
            else:
                labels.append(self.word(label))
            label_rngs.append(self.rng(label))
        header = self.rng(type_node)
        if label_rngs:
            last = label_rngs[-1]
            header = Range(self.filename, header.line, header.col, last.end_line, last.end_col)
        close = node.children[-1]
        end = self.rng(close) if not _is_tree(close) else header
        body = self.body(body_node, end, depth + 1)
        return Block(self.word(type_node), tuple(labels), body, header, tuple(label_rngs))

    def word(self, node: Any) -> str:
        if _is_tree(node):
            return str(node.children[0])
        return str(node)

    # Expressions --------------------------------------------------------------------

    def expr(self, node: Any, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise self.fail("Invalid expression; nested too deeply", node)
        kind = _name(node)
        d = depth + 1
        r = self.rng(node)
        if kind == "expr_term":
            kids = [c for c in node.children if _is_tree(c) and _name(c) != "new_line_or_comment"]
            if len(node.children) > 1 and not _is_tree(node.children[0]):
                return Parens(self.expr(kids[0], d), r)
            return self.expr(kids[0], d)
        if kind == "identifier":
            return Variable(str(node.children[0]), r)
        if kind == "literal_value":
            word = str(node.children[0])
            return Literal({"true": True, "false": False}.get(word), r)
        if kind in ("int_lit", "float_lit"):
            try:
                return Literal(Decimal(str(node.children[0])), r)
            except InvalidOperation:
                raise self.fail("Invalid number literal", node) from None
        if kind == "string":
            return self.string(node, r)
        if kind == "template_string":
            raw = str(node.children[0])[2:-2]
            return Template((templates.unescape(raw.replace('\\\\"', '"')),), r)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            return self.heredoc(node, kind == "heredoc_template_trim", r)
        if kind == "tuple":
            items = [self.expr(c, d) for c in node.children if _name(c) in _EXPR_RULES]
            return TupleCons(tuple(items), r)
        if kind == "object":
            return ObjectCons(tuple(self.object_elems(node, d)), r)
        if kind == "function_call":
            return self.call(node, d, r)
        if kind == "get_attr_expr_term":
            source, step = node.children
            name_node = step.children[-1]
            return GetAttr(self.expr(source, d), self.word(name_node), r)
        if kind == "index_expr_term":
            source, step = node.children
            return Index(self.expr(source, d), self.index_key(step, d), r)
        if kind in ("attr_splat_expr_term", "full_splat_expr_term"):
            source, splat = node.children
            steps: list[tuple[str, Expr | str]] = []
            for step in splat.children:
                if not _is_tree(step):
                    continue
                if _name(step) == "get_attr":
                    steps.append(("attr", self.word(step.children[-1])))
                else:
                    steps.append(("index", self.index_key(step, d)))
            return Splat(self.expr(source, d), tuple(steps), r)
        if kind == "unary_op":
            op, operand = node.children
            return Unary(str(op), self.expr(operand, d), r)
        if kind == "binary_op":
            return self.binary(node, d, r)
        if kind == "conditional":
            kids = [c for c in node.children if _is_tree(c) and _name(c) != "new_line_or_comment"]
            cond, then, otherwise = (self.expr(k, d) for k in kids)
            return Conditional(cond, then, otherwise, r)
        if kind in ("for_tuple_expr", "for_object_expr"):
            return self.for_expr(node, kind == "for_object_expr", d, r)
        raise self.fail(f"Invalid expression; unsupported construct {kind or node!r}", node)

    def binary(self, node: Any, d: int, r: Range) -> Expr:
        left_node, term = node.children[0], node.children[1]
        op_node = term.children[0]
        right_node = next(c for c in term.children[1:] if _name(c) in _EXPR_RULES)
        op = str(op_node.children[0]).strip()
        # Left-recursive chains can be long: walk the left spine without recursing.
        return Binary(op, self.expr(left_node, d), self.expr(right_node, d), r)

    def string(self, node: Any, r: Range) -> Expr:
        pieces: list[templates.Piece] = []
        for part in node.children:
            if not _is_tree(part):
                continue  # the quotes
            inner = part.children[0]
            if not _is_tree(inner):
                text = str(inner)
                if inner.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
                    pieces.append(templates.Piece("lit", text=text[1:]))
                    continue
                try:
                    pieces.append(templates.Piece("lit", text=templates.unescape(text)))
                except ValueError as exc:
                    raise self.fail(f"Invalid escape sequence; {exc}", inner) from None
                continue
            pieces.append(self.directive(inner))
        try:
            parts = templates.assemble(pieces, r)
        except templates.TemplateSyntaxError as exc:
            raise HCLSyntaxError(exc.message, self.filename, exc.line, exc.col) from None
        return Template(parts, r)

    def directive(self, node: Any) -> templates.Piece:
        kind = _name(node)
        tokens = [c for c in node.children if not _is_tree(c)]
        strip_left = len(tokens) > 1 and tokens[1].type == "STRIP_MARKER"
        strip_right = len(tokens) > 2 and tokens[-2].type == "STRIP_MARKER"
        exprs = [c for c in node.children if _name(c) in _EXPR_RULES]
        r = self.rng(node)
        if kind == "interpolation":
            piece = templates.Piece("interp", expr=self.expr(exprs[0], 1))
        elif kind == "template_if_start":
            piece = templates.Piece("if", expr=self.expr(exprs[0], 1))
        elif kind == "template_for_start":
            names = [self.word(c) for c in node.children if _name(c) == "identifier"]
            expr = self.expr(exprs[-1], 1)
            if len(names) == 2:
                piece = templates.Piece("for", expr=expr, key_var=names[0], value_var=names[1])
            else:
                piece = templates.Piece("for", expr=expr, value_var=names[0])
        else:
            piece = templates.Piece(
                {"template_else": "else", "template_endif": "endif"}.get(kind, "endfor")
            )
        piece.strip_left, piece.strip_right = strip_left, strip_right
        piece.line, piece.col = r.line, r.col
        return piece

    def heredoc(self, node: Any, trim: bool, r: Range) -> Expr:
        token = node.children[0]
        raw = str(token)
        first_nl = raw.index("\n")
        body = raw[first_nl + 1 :]
        # Drop the closing marker line.
        body = body.rstrip("\n").rstrip("\r")
        cut = body.rfind("\n")
        body = "" if cut < 0 else body[: cut + 1]
        lines = body.split("\n")
        if trim:
            indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
            strip = min(indents) if indents else 0
            body = "\n".join(ln[strip:] for ln in lines)
        start_line = r.line + 1

        def parse(text: str, line: int, col: int) -> Expr:
            return parse_expression(text, self.filename, line, col)

        try:
            pieces = templates.scan(body, start_line, 1, parse)
            parts = templates.assemble(pieces, r)
        except templates.TemplateSyntaxError as exc:
            raise HCLSyntaxError(exc.message, self.filename, exc.line, exc.col) from None
        return Template(parts, r)

    def object_elems(self, node: Any, d: int) -> list[tuple[Expr, Expr]]:
        out: list[tuple[Expr, Expr]] = []
        for elem in node.children:
            if _name(elem) != "object_elem":
                continue
            key_node, _sep, value_node = elem.children
            inner = key_node.children[0]
            if _name(inner) == "keyword":
                key: Expr = Literal(str(inner.children[0]), self.rng(inner))
            else:
                key = self.expr(inner, d)
                if isinstance(key, Variable):
                    key = Literal(key.name, key.rng)  # a bare name is a literal key
            out.append((key, self.expr(value_node, d)))
        return out

    def call(self, node: Any, d: int, r: Range) -> Expr:
        idents = [c for c in node.children if _name(c) == "identifier"]
        name = "::".join(self.word(i) for i in idents)
        args: list[Expr] = []
        expand = False
        for child in node.children:
            if _name(child) == "arguments":
                for arg in child.children:
                    if _name(arg) in _EXPR_RULES:
                        args.append(self.expr(arg, d))
                    elif not _is_tree(arg) and arg.type == "ELLIPSIS":
                        expand = True
        return Call(name, tuple(args), expand, r, self.rng(idents[0]))

    def index_key(self, step: Any, d: int) -> Expr:
        if _name(step) == "short_index":
            token = step.children[-1]
            return Literal(Decimal(str(token)), self.rng(token))
        exprs = [c for c in step.children if _name(c) in _EXPR_RULES]
        return self.expr(exprs[0], d)

    def for_expr(self, node: Any, is_object: bool, d: int, r: Range) -> Expr:
        intro = next(c for c in node.children if _name(c) == "for_intro")
        names = [self.word(c) for c in intro.children if _name(c) == "identifier"]
        coll = self.expr([c for c in intro.children if _name(c) in _EXPR_RULES][-1], d)
        cond_node = next((c for c in node.children if _name(c) == "for_cond"), None)
        cond = None
        if cond_node is not None:
            cond = self.expr(next(c for c in cond_node.children if _name(c) in _EXPR_RULES), d)
        exprs = [self.expr(c, d) for c in node.children if _name(c) in _EXPR_RULES]
        grouping = any(not _is_tree(c) and c.type == "ELLIPSIS" for c in node.children)
        key_var, value_var = (names[0], names[1]) if len(names) == 2 else (None, names[0])
        if is_object:
            return ForExpr(key_var, value_var, coll, exprs[0], exprs[1], cond, grouping, r)
        return ForExpr(key_var, value_var, coll, None, exprs[0], cond, False, r)
