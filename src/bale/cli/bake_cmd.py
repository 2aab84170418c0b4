"""`bale bake`: buildx's flags; `--print` and `--list` resolve the definition and print it."""

from __future__ import annotations

import argparse
import json
import os
import sys

from bale.errors import BakeError
from bale.oci.platform import host_platform


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bake", help="build from a file (docker buildx bake)")
    p.add_argument(
        "targets", nargs="*", metavar="TARGET", help="targets or groups to build (default: default)"
    )
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        help="build definition file (repeatable; - for stdin)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATTERN.KEY=VALUE",
        help="override target value (e.g. targetpattern.key=value)",
    )
    p.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="set a variable value"
    )
    p.add_argument("--print", action="store_true", help="print the options without building")
    p.add_argument(
        "--list",
        default="",
        metavar="TYPE",
        help="list targets or variables (type=targets|variables[,format=table|json])",
    )
    p.add_argument(
        "--load",
        action="store_true",
        help='shorthand for "--set=*.output=type=docker" (conditional)',
    )
    p.add_argument(
        "--push",
        action="store_true",
        help='shorthand for "--set=*.output=type=registry" (conditional)',
    )
    p.add_argument(
        "--no-cache",
        action="store_const",
        const=True,
        default=None,
        help="do not use cache when building",
    )
    p.add_argument(
        "--pull",
        action="store_const",
        const=True,
        default=None,
        help="always attempt to pull referenced images",
    )
    p.add_argument(
        "--progress", default="auto", choices=("auto", "plain", "tty", "quiet", "rawjson", "none")
    )
    p.add_argument("--metadata-file", help="write build result metadata to a file")
    p.add_argument("--call", default="build", help="build, check, outline or targets")
    p.add_argument(
        "--check",
        action="store_const",
        const="check",
        dest="call",
        help='shorthand for "--call=check"',
    )
    p.add_argument(
        "--provenance", default="", help='shorthand for "--set=*.attest=type=provenance"'
    )
    p.add_argument("--sbom", default="", help='shorthand for "--set=*.attest=type=sbom"')
    p.add_argument("--builder", help="builder instance (accepted for buildx parity)")
    p.add_argument(
        "--allow", action="append", default=[], help="allow build to access specified resources"
    )
    p.set_defaults(func=cmd_bake)


def _overrides(args: argparse.Namespace) -> list[str]:
    from bale.frontends.bake.buildflags import canonicalize_attest

    out = list(args.set)
    if args.push:
        out.append("*.push=true")
    if args.load:
        out.append("*.load=true")
    if args.call and args.call != "build":
        out.append(f"*.call={args.call}")
    if args.no_cache is not None:
        out.append("*.no-cache=true")
    if args.pull is not None:
        out.append("*.pull=true")
    if args.sbom:
        out.append(f"*.attest={canonicalize_attest('sbom', args.sbom)}")
    if args.provenance:
        out.append(f"*.attest={canonicalize_attest('provenance', args.provenance)}")
    return out


def _vars(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        if value == "":
            continue
        key, sep, val = value.partition("=")
        if not sep:
            raise BakeError(f'invalid variable "{value}", expected key=value')
        if not key:
            raise BakeError(f'invalid variable "{value}", key is empty')
        out[key] = val
    return out


def _parse_list(text: str) -> tuple[str, str]:
    from bale.frontends.bake.buildflags import FlagError, csv_fields

    try:
        fields = csv_fields(text)
    except FlagError as exc:
        raise BakeError(str(exc)) from None
    kind, fmt = "", ""
    if len(fields) == 1 and fields[0] == text and not text.startswith("type="):
        kind = text
    else:
        for f in fields:
            key, sep, value = f.partition("=")
            if not sep:
                raise BakeError(f"invalid value {f}")
            key = key.strip().lower()
            if key == "type":
                kind = value
            elif key == "format":
                fmt = value
            else:
                raise BakeError(f"unexpected key '{key}' in '{f}'")
    fmt = fmt or "table"
    if kind not in ("targets", "variables"):
        raise BakeError(f'invalid list type "{kind}"')
    if fmt not in ("table", "json"):
        raise BakeError(f'invalid list format "{fmt}"')
    return kind, fmt


def _tabwriter(rows: list[list[str]]) -> str:
    """Go's tabwriter with minwidth 1, tabwidth 8, padding 1, padchar '\\t'."""
    widths = [0] * max(len(r) for r in rows)
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths[i], len(cell) + 1)
    lines = []
    for r in rows:
        parts = []
        for i, cell in enumerate(r):
            if i == len(r) - 1:
                parts.append(cell)
                continue
            width = -(-widths[i] // 8) * 8
            tabs = -(-(width - len(cell)) // 8)
            parts.append(cell + "\t" * max(1, tabs))
        lines.append("".join(parts))
    return "\n".join(lines)


def cmd_bake(args: argparse.Namespace) -> int:
    from bale.frontends.bake import resolve

    if args.print and args.list:
        raise BakeError("--print and --list are mutually exclusive")
    names = list(args.file) or resolve.files_from_env(os.environ)
    files = resolve.read_local_files(names, read_stdin=sys.stdin.read)
    if not files:
        raise BakeError(
            "couldn't find a bake definition", hint="create docker-bake.hcl or pass -f FILE"
        )
    builtins = {"BAKE_CMD_CONTEXT": "cwd://", "BAKE_LOCAL_PLATFORM": str(host_platform())}
    definition = resolve.parse_files(files, builtins=builtins, variables=_vars(args.var))
    if args.list:
        kind, fmt = _parse_list(args.list)
        print(
            _list_targets(definition, fmt)
            if kind == "targets"
            else _list_variables(definition, fmt)
        )
        return 0
    plan = resolve.read_targets(definition, list(args.targets), _overrides(args))
    if args.print:
        print(plan.print_json())
        return 0
    # The builder is imported only to build: --print and --list never load it.
    from bale.cli import bake_build

    return bake_build.run(args, plan)


def _list_targets(d: object, fmt: str) -> str:
    from bale.frontends.bake.resolve import Definition

    assert isinstance(d, Definition)
    entries: list[tuple[str, str, bool]] = []
    items = [(t.name, t.description, None) for t in d.targets] + [
        (g.name, g.description, g) for g in d.groups
    ]
    for name, desc, group in sorted(items, key=lambda e: e[0]):
        if name.startswith("_"):
            continue
        if group is not None and group.targets:
            names = ", ".join(sorted(group.targets))
            desc = f"{desc} ({names})" if desc else names
        entries.append((name, desc, group is not None))
    if fmt == "json":
        out = []
        for name, desc, is_group in entries:
            e: dict[str, object] = {"name": name}
            if desc:
                e["description"] = desc
            if is_group:
                e["group"] = True
            out.append(e)
        return json.dumps(out, indent=2)
    return _tabwriter([["TARGET", "DESCRIPTION"]] + [[n, ds] for n, ds, _ in entries])


def _list_variables(d: object, fmt: str) -> str:
    from bale.frontends.bake.resolve import Definition

    assert isinstance(d, Definition)
    variables = sorted(d.variables, key=lambda v: v.name)
    if fmt == "json":
        out = []
        for v in variables:
            e: dict[str, object] = {"name": v.name}
            if v.description:
                e["description"] = v.description
            if v.type:
                e["type"] = v.type
            if v.value is not None:
                e["value"] = v.value
            out.append(e)
        return json.dumps(out, indent=2)
    rows = [["VARIABLE", "TYPE", "VALUE", "DESCRIPTION"]]
    rows += [
        [v.name, v.type, v.value if v.value is not None else "<null>", v.description]
        for v in variables
    ]
    return _tabwriter(rows)
