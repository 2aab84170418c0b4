"""HCL's JSON syntax: a JSON bake file as a `Body`, strings being templates.

A small position-keeping JSON reader (the standard library drops positions), so errors in
JSON files point at their line and column too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bale.frontends.bake import templates
from bale.frontends.bake.hclparse import HCLSyntaxError, parse_expression
from bale.frontends.bake.syntax import (
    Attribute,
    Block,
    Body,
    Expr,
    Literal,
    ObjectCons,
    Range,
    Template,
    TupleCons,
)

MAX_DEPTH = 128

# Block types and their label counts, per nesting level (everything else is an attribute).
TOP_BLOCKS = {"target": 1, "group": 1, "variable": 1, "function": 1}
NESTED_BLOCKS = {"variable": {"validation": 0}}


class _Node:
    __slots__ = ("col", "end", "kind", "line", "value")

    def __init__(self, kind: str, value: Any, line: int, col: int, end: tuple[int, int]) -> None:
        self.kind, self.value, self.line, self.col, self.end = kind, value, line, col, end


class _Reader:
    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename, self.i, self.line, self.col = text, filename, 0, 1, 1

    def fail(self, message: str) -> HCLSyntaxError:
        return HCLSyntaxError(message, self.filename, self.line, self.col)

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t\r\n":
            self.step()

    def step(self) -> str:
        ch = self.text[self.i]
        self.i += 1
        if ch == "\n":
            self.line, self.col = self.line + 1, 1
        else:
            self.col += 1
        return ch

    def value(self, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.fail("Invalid JSON; nested too deeply")
        self.skip()
        if self.i >= len(self.text):
            raise self.fail("Invalid JSON; unexpected end of file")
        line, col = self.line, self.col
        ch = self.text[self.i]
        if ch == "{":
            self.step()
            items: list[tuple[_Node, _Node]] = []
            self.skip()
            if self.text[self.i : self.i + 1] == "}":
                self.step()
                return _Node("object", items, line, col, (self.line, self.col))
            while True:
                self.skip()
                if self.text[self.i : self.i + 1] != '"':
                    raise self.fail("Invalid JSON; object keys must be strings")
                key = self.value(depth + 1)
                self.skip()
                if self.text[self.i : self.i + 1] != ":":
                    raise self.fail("Invalid JSON; missing ':' after object key")
                self.step()
                items.append((key, self.value(depth + 1)))
                self.skip()
                nxt = self.text[self.i : self.i + 1]
                self.step() if nxt else None
                if nxt == "}":
                    return _Node("object", items, line, col, (self.line, self.col))
                if nxt != ",":
                    raise self.fail("Invalid JSON; expected ',' or '}'")
        if ch == "[":
            self.step()
            elems: list[_Node] = []
            self.skip()
            if self.text[self.i : self.i + 1] == "]":
                self.step()
                return _Node("array", elems, line, col, (self.line, self.col))
            while True:
                elems.append(self.value(depth + 1))
                self.skip()
                nxt = self.text[self.i : self.i + 1]
                self.step() if nxt else None
                if nxt == "]":
                    return _Node("array", elems, line, col, (self.line, self.col))
                if nxt != ",":
                    raise self.fail("Invalid JSON; expected ',' or ']'")
        if ch == '"':
            return self.string(line, col)
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.i):
                for _ in word:
                    self.step()
                return _Node("literal", val, line, col, (self.line, self.col))
        start = self.i
        while self.i < len(self.text) and self.text[self.i] in "+-0123456789.eE":
            self.step()
        try:
            return _Node(
                "literal", Decimal(self.text[start : self.i]), line, col, (self.line, self.col)
            )
        except ArithmeticError:
            raise HCLSyntaxError(
                "Invalid JSON; unexpected character", self.filename, line, col
            ) from None

    def string(self, line: int, col: int) -> _Node:
        import json

        self.step()
        start = self.i
        while True:
            if self.i >= len(self.text):
                raise HCLSyntaxError("Invalid JSON; unterminated string", self.filename, line, col)
            ch = self.step()
            if ch == "\\":
                if self.i < len(self.text):
                    self.step()
            elif ch == '"':
                break
        try:
            value = json.loads(self.text[start - 1 : self.i])
        except ValueError:
            raise HCLSyntaxError(
                "Invalid JSON; bad string escape", self.filename, line, col
            ) from None
        return _Node("string", value, line, col, (self.line, self.col))


def parse_file(text: str, filename: str) -> Body:
    reader = _Reader(text, filename)
    root = reader.value(0)
    reader.skip()
    if reader.i < len(text):
        raise reader.fail("Invalid JSON; extra characters after the value")
    if root.kind != "object":
        raise HCLSyntaxError(
            "Invalid JSON; the root of a bake file must be an object", filename, root.line, root.col
        )
    return _Converter(filename).body([root], TOP_BLOCKS, "")


class _Converter:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def rng(self, node: _Node) -> Range:
        return Range(self.filename, node.line, node.col, node.end[0], node.end[1])

    def body(self, nodes: list[_Node], blocks: dict[str, int], kind: str) -> Body:
        attributes: list[Attribute] = []
        out_blocks: list[Block] = []
        for node in nodes:
            if node.kind != "object":
                raise HCLSyntaxError(
                    "Invalid JSON; a block body must be an object",
                    self.filename,
                    node.line,
                    node.col,
                )
            for key, value in node.value:
                name = key.value
                if name in blocks:
                    out_blocks.extend(self.blocks(name, blocks[name], value, [], key))
                else:
                    attributes.append(
                        Attribute(name, self.expr(value, 0), self.rng(key), self.rng(key))
                    )
        end = self.rng(nodes[-1]) if nodes else None
        return Body(tuple(attributes), tuple(out_blocks), end)

    def blocks(
        self, kind: str, nlabels: int, node: _Node, labels: list[tuple[str, Range]], key: _Node
    ) -> list[Block]:
        if node.kind == "array":
            out: list[Block] = []
            for elem in node.value:
                out.extend(self.blocks(kind, nlabels, elem, labels, key))
            return out
        if node.kind != "object":
            raise HCLSyntaxError(
                f"Invalid JSON; {kind} must be an object", self.filename, node.line, node.col
            )
        if len(labels) < nlabels:
            out = []
            for label_key, body in node.value:
                out.extend(
                    self.blocks(
                        kind, nlabels, body, [*labels, (label_key.value, self.rng(label_key))], key
                    )
                )
            return out
        nested = NESTED_BLOCKS.get(kind, {})
        body = self.body([node], nested, kind)
        header = labels[-1][1] if labels else self.rng(key)
        return [
            Block(kind, tuple(lbl for lbl, _ in labels), body, header, tuple(r for _, r in labels))
        ]

    def expr(self, node: _Node, depth: int) -> Expr:
        r = self.rng(node)
        if node.kind == "literal":
            return Literal(node.value, r)
        if node.kind == "array":
            return TupleCons(tuple(self.expr(e, depth + 1) for e in node.value), r)
        if node.kind == "object":
            return ObjectCons(
                tuple((self.template(k), self.expr(v, depth + 1)) for k, v in node.value), r
            )
        return self.template(node)

    def template(self, node: _Node) -> Template:
        r = self.rng(node)

        def parse(text: str, line: int, col: int) -> Expr:
            return parse_expression(text, self.filename, line, col)

        try:
            pieces = templates.scan(node.value, node.line, node.col + 1, parse)
            parts = templates.assemble(pieces, r)
        except templates.TemplateSyntaxError as exc:
            raise HCLSyntaxError(exc.message, self.filename, exc.line, exc.col) from None
        return Template(parts, r, from_json=True)
