"""Builders and their nodes, as `bale builder create|ls|inspect|rm|use` keep them.

The state is one JSON file, `ROOT/builders.json` (docs/nodes.md):

    {"current": "NAME", "builders": {"NAME": {"nodes": [{"name", "endpoint",
     "platforms": [...], "opts": {"bale": PATH, "root": PATH}}]}}}

A builder named `default` with one `local` node always exists implicitly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bale.errors import InvalidArgument, NotFound
from bale.oci.platform import Platform, require_known
from bale.store.atomic import write_atomic

DEFAULT = "default"
FILE = "builders.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENDPOINT = re.compile(r"^ssh://(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s]+)(?::(?P<port>\d+))?/?$")
NODE_OPTS = ("bale", "root")


@dataclass(frozen=True)
class Endpoint:
    """`local`, or `ssh://[user@]host[:port]`."""

    kind: str  # "local" | "ssh"
    host: str = ""
    user: str = ""
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        if text == "local":
            return cls("local")
        m = _ENDPOINT.match(text)
        if m is None:
            raise InvalidArgument(
                f"invalid endpoint {text!r}", hint="use local or ssh://[user@]host[:port]"
            )
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise InvalidArgument(f"invalid endpoint {text!r}: port {port} is out of range")
        return cls("ssh", m["host"], m["user"] or "", port)

    def __str__(self) -> str:
        if self.kind == "local":
            return "local"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"ssh://{user}{self.host}{port}"


@dataclass(frozen=True)
class Node:
    name: str
    endpoint: Endpoint
    platforms: tuple[Platform, ...] = ()  # declared: what it serves natively
    opts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpoint": str(self.endpoint),
            "platforms": [str(p) for p in self.platforms],
            "opts": dict(sorted(self.opts.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        return cls(
            name=str(data["name"]),
            endpoint=Endpoint.parse(str(data["endpoint"])),
            platforms=tuple(Platform.parse(p) for p in data.get("platforms", [])),
            opts={str(k): str(v) for k, v in dict(data.get("opts", {})).items()},
        )


@dataclass(frozen=True)
class Builder:
    name: str
    nodes: tuple[Node, ...]

    @property
    def remote(self) -> bool:
        """Whether a build leaves this process (any node but one local node)."""
        return not (len(self.nodes) == 1 and self.nodes[0].endpoint.kind == "local")


def default_builder() -> Builder:
    return Builder(DEFAULT, (Node(DEFAULT, Endpoint("local")),))


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(
            f"invalid {what} name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (up to 63 characters)",
        )
    return name


def parse_platforms(values: list[str]) -> tuple[Platform, ...]:
    out: list[Platform] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                p = require_known(Platform.parse(part.strip()))
                if p not in out:
                    out.append(p)
    return tuple(out)


def parse_driver_opts(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            key, eq, val = part.partition("=")
            key = key.strip()
            if not eq or not key:
                raise InvalidArgument(f"invalid --driver-opt {part!r}", hint="use KEY=VALUE")
            if key not in NODE_OPTS:
                raise InvalidArgument(
                    f"unknown --driver-opt {key!r}", hint="known: " + ", ".join(NODE_OPTS)
                )
            out[key] = val
    return out


class BuilderState:
    """The builders file of one bale root; every change is written atomically."""

    def __init__(self, root: Path) -> None:
        self.path = root / FILE
        self.current = DEFAULT
        self.builders: dict[str, Builder] = {}
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            self.current = str(data.get("current") or DEFAULT)
            for name, b in dict(data.get("builders", {})).items():
                nodes = tuple(Node.from_json(n) for n in b.get("nodes", []))
                self.builders[str(name)] = Builder(str(name), nodes)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidArgument) as exc:
            raise InvalidArgument(
                f"{self.path}: unreadable builder state: {exc}",
                hint="fix or remove the file (bale builder rm NAME rewrites it)",
            ) from None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "current": self.current,
            "builders": {
                name: {"nodes": [n.to_json() for n in b.nodes]}
                for name, b in sorted(self.builders.items())
            },
        }
        write_atomic(self.path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)

    def all(self) -> list[Builder]:
        return [default_builder()] + [self.builders[n] for n in sorted(self.builders)]

    def get(self, name: str) -> Builder:
        if name == DEFAULT:
            return default_builder()  # always this process: what a node's own build uses
        if name in self.builders:
            return self.builders[name]
        raise NotFound(
            f"no builder {name!r} found",
            hint="bale builder ls lists them; bale builder create makes one",
        )

    def create(self, name: str, node: Node, append: bool) -> Builder:
        if append:
            if name not in self.builders:
                raise NotFound(f"no builder {name!r} to append to", hint="drop --append")
            current = self.builders[name]
            if any(n.name == node.name for n in current.nodes):
                # buildx: --append with an existing node name updates that node.
                nodes = tuple(node if n.name == node.name else n for n in current.nodes)
            else:
                nodes = (*current.nodes, node)
            builder = replace(current, nodes=nodes)
        else:
            if name in self.builders or name == DEFAULT:
                raise InvalidArgument(
                    f"existing instance for {name!r} but no --append was specified",
                    hint="add --append to add a node, or bale builder rm it first",
                )
            builder = Builder(name, (node,))
        self.builders[name] = builder
        return builder

    def remove(self, name: str) -> None:
        if name == DEFAULT:
            raise InvalidArgument("the default builder cannot be removed")
        self.get(name)
        self.builders.pop(name, None)
        if self.current == name:
            self.current = DEFAULT

    def use(self, name: str) -> None:
        self.get(name)
        self.current = name
