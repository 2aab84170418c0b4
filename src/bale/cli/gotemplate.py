"""The part of Go's text/template that `--format` users write: `{{.Field.Sub}}`,
`{{json .X}}`, `{{index .X "key"}}`, `{{upper .X}}`/`{{lower .X}}`, literal text and
`\\t`/`\\n`, and docker's `table` prefix (a header row of the field names)."""

from __future__ import annotations

import json
import re
from typing import Any

from bale.errors import InvalidArgument

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')


def _lookup(data: Any, path: str) -> Any:
    if path == ".":
        return data
    value = data
    for part in path.lstrip(".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def go_print(value: Any) -> str:
    """A value as Go's fmt prints it in a template."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _evaluate(expr: str, data: Any) -> str:
    tokens = _TOKEN.findall(expr)
    if not tokens:
        raise InvalidArgument(f"template: empty action in {expr!r}")
    head = tokens[0]
    if head.startswith("."):
        return go_print(_lookup(data, head))
    args = [_lookup(data, t) if t.startswith(".") else json.loads(t) if t.startswith('"')
            else t for t in tokens[1:]]
    if head == "json" and len(args) == 1:
        return json.dumps(args[0], separators=(",", ":"))
    if head == "index" and len(args) == 2 and isinstance(args[0], dict):
        return go_print(args[0].get(args[1]))
    if head in ("upper", "lower") and len(args) == 1:
        text = go_print(args[0])
        return text.upper() if head == "upper" else text.lower()
    raise InvalidArgument(
        f"template: unsupported action {{{{{expr}}}}}",
        hint="bale's --format takes {{.Field}}, {{json .Field}}, {{index .Map \"key\"}}",
    )


def render(template: str, data: Any) -> str:
    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return _ACTION.sub(lambda m: _evaluate(m.group(1), data), text)


def table_header(template: str) -> str:
    """docker's header row for a `table ...` format: each field's name, upper-cased."""
    text = template.replace("\\t", "\t").replace("\\n", "\n")

    def name(match: re.Match[str]) -> str:
        tokens = _TOKEN.findall(match.group(1))
        field = next((t for t in tokens if t.startswith(".")), "")
        return re.sub(r"(?<!^)(?=[A-Z][a-z])", " ", field.lstrip(".").split(".")[-1]).upper()

    return _ACTION.sub(name, text)
