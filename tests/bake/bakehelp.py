"""Helpers for the bake tests: parse definitions from strings and resolve them."""

from __future__ import annotations

import json
from typing import Any

from bale.frontends.bake.plan import Plan
from bale.frontends.bake.resolve import BakeFile, Definition, parse_files, read_targets

BUILTINS = {"BAKE_CMD_CONTEXT": "cwd://", "BAKE_LOCAL_PLATFORM": "linux/amd64"}


def parse(*files: tuple[str, str], variables: dict[str, str] | None = None) -> Definition:
    return parse_files([BakeFile(n, t) for n, t in files], builtins=BUILTINS, variables=variables)


def hcl(text: str, **kw: Any) -> Definition:
    return parse(("docker-bake.hcl", text), **kw)


def plan(d: Definition, targets: list[str] | None = None, sets: list[str] | None = None) -> Plan:
    return read_targets(d, targets or [], sets or [], env={})


def printed(d: Definition, targets: list[str] | None = None, sets: list[str] | None = None) -> Any:
    return json.loads(plan(d, targets, sets).print_json())


def target(d: Definition, name: str) -> Any:
    t = d.target(name)
    assert t is not None, name
    return t
