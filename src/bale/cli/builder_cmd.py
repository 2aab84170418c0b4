"""`bale builder`: builders of nodes (create, ls, inspect, rm, use; as `docker buildx
create|ls|inspect|rm|use`) and the build cache (prune, as `docker buildx prune`)."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bale.builder.prune import prune_build_cache
from bale.cli.common import open_store, table
from bale.errors import BaleError, InvalidArgument
from bale.store.gc import human_size

if TYPE_CHECKING:
    from bale.cli.nodes.state import Builder, BuilderState, Node
    from bale.cli.nodes.transport import Hello


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    builder = sub.add_parser("builder", help="manage builders (nodes) and the build cache")
    bsub = builder.add_subparsers(dest="builder_command", metavar="COMMAND")
    bsub.required = True
    prune = bsub.add_parser("prune", help="remove the build cache")
    prune.add_argument("-a", "--all", action="store_true", help="accepted for buildx parity")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (always set)")
    prune.set_defaults(func=cmd_prune)

    create = bsub.add_parser("create", help="create a builder, or --append a node to one")
    create.add_argument(
        "endpoint", nargs="?", default="local", help="local (default) or ssh://[user@]host[:port]"
    )
    create.add_argument("--name", help="builder name (default: generated)")
    create.add_argument("--node", help="node name (default: BUILDER<n>)")
    create.add_argument(
        "--platform",
        action="append",
        default=[],
        help="platforms the node serves natively, comma-separated",
    )
    create.add_argument("--append", action="store_true", help="add the node to the builder")
    create.add_argument(
        "--driver-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="bale=PATH (the node's bale command), root=PATH (its --root)",
    )
    create.add_argument("--use", action="store_true", help="make it the current builder")
    create.set_defaults(func=cmd_create)

    ls = bsub.add_parser("ls", help="list builders and their nodes")
    ls.add_argument("--format", default="table", choices=("table", "json"))
    ls.set_defaults(func=cmd_ls)

    inspect = bsub.add_parser("inspect", help="show a builder and its nodes")
    inspect.add_argument("name", nargs="?", help="builder (default: the current one)")
    inspect.set_defaults(func=cmd_inspect)

    rm = bsub.add_parser("rm", help="remove builders")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(func=cmd_rm)

    use = bsub.add_parser("use", help="make a builder the current one")
    use.add_argument("name")
    use.set_defaults(func=cmd_use)


def cmd_prune(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        report = prune_build_cache(store)
    print(f"Deleted build cache records: {report.cache_records}")
    print(f"Deleted snapshots: {report.snapshots}")
    print(f"Total:\t{human_size(report.bytes_freed)}")
    return 0


def _state(args: argparse.Namespace) -> BuilderState:
    from bale.cli.nodes.select import state_root
    from bale.cli.nodes.state import BuilderState

    return BuilderState(state_root(args))


def cmd_create(args: argparse.Namespace) -> int:
    from bale.cli.nodes.state import (
        Endpoint,
        Node,
        check_name,
        parse_driver_opts,
        parse_platforms,
    )

    state = _state(args)
    if args.append and not args.name:
        raise InvalidArgument("--append needs --name of the builder to append to")
    name = check_name(args.name, "builder") if args.name else _fresh_name(state)
    existing = state.builders.get(name)
    count = len(existing.nodes) if existing is not None and args.append else 0
    node_name = check_name(args.node, "node") if args.node else f"{name}{count}"
    node = Node(
        node_name,
        Endpoint.parse(args.endpoint),
        parse_platforms(args.platform),
        parse_driver_opts(args.driver_opt),
    )
    state.create(name, node, args.append)
    if args.use:
        state.use(name)
    state.save()
    print(name)
    return 0


def _fresh_name(state: BuilderState) -> str:
    n = 0
    while f"builder{n}" in state.builders:
        n += 1
    return f"builder{n}"


def _probe_all(nodes: tuple[Node, ...]) -> list[tuple[Hello | None, str]]:
    from bale.cli.nodes import transport

    def one(node: Node) -> tuple[Hello | None, str]:
        try:
            info = transport.hello(node)
            transport.require_version(node, info)
            return info, ""
        except BaleError as exc:
            return None, exc.message

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        return list(pool.map(one, nodes))


def _node_rows(builder: Builder) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node, (info, error) in zip(builder.nodes, _probe_all(builder.nodes), strict=True):
        declared = [str(p) for p in node.platforms]
        native = [str(p) for p in info.native] if info else []
        emulated = [str(p) for p in info.emulated] if info else []
        out.append(
            {
                "name": node.name,
                "endpoint": str(node.endpoint),
                "status": "running" if info else "error",
                "error": error,
                "version": info.version if info else "",
                "platforms": {"declared": declared, "native": native, "emulated": emulated},
                "opts": node.opts,
            }
        )
    return out


def _platform_cell(p: dict[str, list[str]]) -> str:
    shown = [f"{x}*" for x in p["declared"]]
    shown += [x for x in p["native"] if x not in p["declared"]]
    shown += [f"{x} (emulated)" for x in p["emulated"] if x not in p["declared"]]
    return ", ".join(shown)


def cmd_ls(args: argparse.Namespace) -> int:
    state = _state(args)
    builders = state.all()
    data: list[dict[str, Any]] = [
        {"name": b.name, "current": b.name == state.current, "nodes": _node_rows(b)}
        for b in builders
    ]
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    rows = [("NAME/NODE", "ENDPOINT", "STATUS", "BALE", "PLATFORMS")]
    for b in data:
        rows.append((b["name"] + ("*" if b["current"] else ""), "", "", "", ""))
        for n in b["nodes"]:
            status = n["status"] if not n["error"] else f"error: {n['error']}"
            rows.append(
                (
                    f" \\_ {n['name']}",
                    n["endpoint"],
                    status,
                    n["version"],
                    _platform_cell(n["platforms"]),
                )
            )
    print(table(rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    state = _state(args)
    builder = state.get(args.name or state.current)
    print(f"Name:          {builder.name}")
    print("Driver:        ssh" if builder.remote else "Driver:        local")
    for n in _node_rows(builder):
        print()
        print(f"Name:          {n['name']}")
        print(f"Endpoint:      {n['endpoint']}")
        for key, value in sorted(n["opts"].items()):
            print(f"Driver Option: {key}={value}")
        print(f"Status:        {n['status']}")
        if n["error"]:
            print(f"Error:         {n['error']}")
        if n["version"]:
            print(f"Bale version:  {n['version']}")
        print(f"Platforms:     {_platform_cell(n['platforms'])}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    state = _state(args)
    for name in args.names:
        state.remove(name)
    state.save()
    return 0


def cmd_use(args: argparse.Namespace) -> int:
    state = _state(args)
    state.use(args.name)
    state.save()
    return 0
