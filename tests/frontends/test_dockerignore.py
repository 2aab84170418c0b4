"""`.dockerignore` matching with Docker's rules, and which ignore file applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from bale.frontends.dockerignore import DockerIgnore, ignore_file_for, load_ignore


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # `*` does not cross `/`
        ("**/*.md", "docs/deep/README.md", True),
        ("**/*.md", "README.md", True),
        ("docs", "docs/a/b.txt", True),  # a directory excludes what is below it
        ("docs/", "docs/a.txt", True),  # trailing slash cleaned
        ("/docs", "docs/a.txt", True),  # leading slash dropped
        ("./docs", "docs", True),
        ("node_modules", "src/node_modules", False),
        ("**/node_modules", "src/node_modules/x.js", True),
        ("temp?", "temp1", True),
        ("temp?", "temp/1", False),
        ("[a-c].txt", "b.txt", True),
        ("[!a-c].txt", "d.txt", True),
        ("[!a-c].txt", "a.txt", False),
        ("*\n!keep.md", "keep.md", False),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("!README.md\n*.md", "README.md", True),  # last match wins
        ("# *.md\nREADME.md", "x.md", False),  # comment
        (" *.md ", "a.md", True),  # trimmed
        (".", "anything", False),  # `.` is ignored
        ("a/**", "a/b/c", True),
        ("a/**/c", "a/c", True),
        ("a/**/c", "a/x/y/c", True),
        ("file(1).txt", "file(1).txt", True),
        ("\\*", "*", True),
        ("\\*", "x", False),
    ],
)
def test_matching(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore.parse(patterns).excluded(path) is excluded


def test_walk_respects_exclusions(tmp_path: Path) -> None:
    for rel in ["a.txt", "b.md", "docs/x.md", "docs/keep.md", "node_modules/m/i.js", "src/main.go"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    ignore = DockerIgnore.parse("*.md\ndocs\n!docs/keep.md\nnode_modules\n")
    # An excluded directory is not listed itself, but a re-included file inside it is.
    assert sorted(ignore.walk(tmp_path)) == ["a.txt", "docs/keep.md", "src", "src/main.go"]


def test_ignore_file_lookup(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    assert ignore_file_for(context) is None
    assert load_ignore(context).patterns == ()
    (context / ".dockerignore").write_text("*.log\n")
    assert ignore_file_for(context) == context / ".dockerignore"
    dockerfile = tmp_path / "app.Dockerfile"
    dockerfile.write_text("FROM x\n")
    assert ignore_file_for(context, dockerfile) == context / ".dockerignore"
    specific = tmp_path / "app.Dockerfile.dockerignore"
    specific.write_text("*.tmp\n")
    assert ignore_file_for(context, dockerfile) == specific
    assert load_ignore(context, dockerfile).excluded("x.tmp")
    assert not load_ignore(context, dockerfile).excluded("x.log")
    plain = context / "Dockerfile"
    plain.write_text("FROM x\n")
    (context / "Dockerfile.dockerignore").write_text("secret\n")
    assert load_ignore(context, plain).excluded("secret")
