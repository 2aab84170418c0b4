"""`--format` Go templates as docker users script them."""

from __future__ import annotations

import pytest

from bale.cli.gotemplate import GoField, GoNil, GoStruct, go_json, render, table_header
from bale.errors import InvalidArgument

DATA = {
    "Id": "sha256:ab",
    "RepoTags": ["app:1", "app:2"],
    "Size": 12,
    "Config": {"Env": ["A=1"], "Labels": {"k": "v"}, "Cmd": None},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Id}}", "sha256:ab"),
        ("{{.RepoTags}}", "[app:1 app:2]"),
        ("{{json .Config.Labels}}", '{"k":"v"}'),
        ('{{index .Config.Labels "k"}}', "v"),
        ("{{.Config.Cmd}}", "<no value>"),
        ("{{.Nope}}", "<no value>"),
        ("{{.Size}}\\t{{ .Id }}", "12\tsha256:ab"),
        ("{{upper .Id}}", "SHA256:AB"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_table_header_and_unknown_actions() -> None:
    assert table_header("{{.Repository}}\\t{{.CreatedSince}}") == "REPOSITORY\tCREATED SINCE"
    with pytest.raises(InvalidArgument, match="unsupported action"):
        render("{{range .RepoTags}}{{.}}{{end}}", DATA)


STRUCT = GoStruct(
    "t.T",
    (
        GoField("Name", "name", "a<b>&c"),
        GoField("Items", "items", GoNil("slice"), omitempty=True),
        GoField("Size", "size", 0),
        GoField("Tags", "tags", {"z": "1", "a": "2"}),
        GoField("Hidden", "", "x", method=True),
    ),
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{(index .M "linux/arm64").Architecture}}', "arm64"),
        ('{{index .M "linux/arm64" "Architecture"}}', "arm64"),
        ("{{index .L 1}}", "b"),
        ("{{.L | len}}", "3"),
        ("{{len .M}}", "1"),
        ('{{"x" | upper}}', "X"),
        ("a  {{- .S -}}  b", "asb"),
        ("a {{/* a comment */}}b", "a b"),
        ("{{.F}} {{.G}} {{.H}}", "1e+06 123456 2.5e-07"),
        ("{{json .F}} {{json .G}} {{json .H}} {{json .Big}}", "1000000 123456 2.5e-7 1e+21"),
        ("{{.T.Name}} {{.T.Items}} {{.T.Hidden}}", "a<b>&c [] x"),
        ("{{.T}}", "{a<b>&c [] 0 map[a:2 z:1]}"),
        ("{{json .T}}", '{"name":"a<b>&c","size":0,"tags":{"a":"2","z":"1"}}'),
        (
            "{{.}}",
            "map[Big:1e+21 F:1e+06 G:123456 H:2.5e-07 L:[a b c] M:map[linux/arm64:map[Architecture:arm64]] S:s T:{a<b>&c [] 0 map[a:2 z:1]}]",
        ),
    ],
)
def test_render_go_pipelines(template: str, expected: str) -> None:
    data = {
        "M": {"linux/arm64": {"Architecture": "arm64"}},
        "L": ["a", "b", "c"],
        "S": "s",
        "F": 1e6,
        "G": 123456.0,
        "H": 2.5e-7,
        "Big": 1e21,
        "T": STRUCT,
    }
    assert render(template, data) == expected


def test_go_json_indented_escapes_html_as_marshal_indent() -> None:
    value = {"b": [1.0, 0.5, {}], "a": "<x> & \u2028", "c": GoNil("map")}
    assert go_json(value, indent="  ", escape_html=True) == (
        '{\n  "a": "\\u003cx\\u003e \\u0026 \\u2028",\n  "b": [\n    1,\n    0.5,\n    {}\n'
        '  ],\n  "c": null\n}'
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{nope .X}}", 'function "nope" not defined'),
        ("{{.T.Nope}}", "can't evaluate field Nope in type t.T"),
        ("{{(index .L}}", r"unclosed \("),
        ("{{.S .S}}", "can't give an argument to a non-function"),
        ("{{index .L 7}}", "index of 7 out of range"),
        ("{{if .S}}x{{end}}", "unsupported action"),
        ("{{" + "(" * 100 + ".S" + ")" * 100 + "}}", "nested too deeply"),
    ],
)
def test_template_errors_are_invalid_argument(template: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        render(template, {"L": ["a"], "S": "s", "T": STRUCT})
