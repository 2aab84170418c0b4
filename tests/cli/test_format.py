"""`--format` Go templates as docker users script them."""

from __future__ import annotations

import pytest

from bale.cli.gotemplate import render, table_header
from bale.errors import InvalidArgument

DATA = {"Id": "sha256:ab", "RepoTags": ["app:1", "app:2"], "Size": 12,
        "Config": {"Env": ["A=1"], "Labels": {"k": "v"}, "Cmd": None}}


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
