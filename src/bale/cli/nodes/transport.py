"""How a node is reached: the system OpenSSH client for `ssh://` endpoints (so
`~/.ssh/config`, agents and ProxyJump work as users expect), a local process for `local`.

The remote command is the node's bale (`--driver-opt bale=PATH`, default `bale` on its
PATH) with its root (`root=PATH`), running the hidden `bale node` command. Environment:

- `BALE_SSH_CONFIG`: an ssh_config file, passed as `ssh -F FILE`;
- `BALE_SSH_COMMAND`: the ssh program and leading options (default `ssh`).

Wire format of `bale node build`, one session per node and build:
1. coordinator -> stdin: `{"context": DIGEST, "named": {NAME: DIGEST}}` (one JSON line);
2. node -> stderr: `{"bale-node-hello": {"bale": VERSION, "native": [...], "emulated":
   [...], "context": HAS_IT, "named": {NAME: HAS_IT}}}`;
3. coordinator -> stdin: the header (one JSON line: flags, Dockerfile, secrets, the
   sizes of what follows), then the compressed context and named contexts the node lacks,
   in header order; or EOF, when the plan gave it nothing to do. Stdin then stays open
   for as long as the coordinator wants the build (EOF cancels it);
4. node -> stdout: the result as an OCI layout tar (only its documents after a push by
   digest); -> stderr: the build's rawjson progress lines and, on failure, its error text.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import IO

from bale import __version__
from bale.cli.nodes.state import Node
from bale.errors import FailedPrecondition, Unavailable
from bale.oci.platform import Platform

SSH_EXIT = 255  # what ssh exits with when the connection failed or was lost
HELLO_TIMEOUT = 60.0


def remote_words(node: Node, *words: str) -> list[str]:
    bale = node.opts.get("bale", "")
    head = (
        shlex.split(bale)
        if bale
        else ([sys.executable, "-m", "bale"] if node.endpoint.kind == "local" else ["bale"])
    )
    root = node.opts.get("root", "")
    return [*head, *(["--root", root] if root else []), "node", *words]


def command(node: Node, *words: str, agent: str = "") -> list[str]:
    """The argv that runs `bale node WORDS...` on the node; `agent`, an ssh-agent socket
    to forward (`--ssh`), is the node build's SSH_AUTH_SOCK there."""
    remote = remote_words(node, *words)
    if node.endpoint.kind == "local":
        return remote
    ssh = shlex.split(os.environ.get("BALE_SSH_COMMAND", "") or "ssh")
    config = os.environ.get("BALE_SSH_CONFIG", "")
    if config:
        ssh += ["-F", config]
    ssh += [
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        # The agent to forward is the ssh client's SSH_AUTH_SOCK (start_build sets it).
        "ForwardAgent=yes" if agent else "ForwardAgent=no",
    ]
    endpoint = node.endpoint
    if endpoint.port is not None:
        ssh += ["-p", str(endpoint.port)]
    if endpoint.user:
        ssh += ["-l", endpoint.user]
    return [*ssh, endpoint.host, "--", shlex.join(remote)]


def describe(node: Node) -> str:
    return f"node {node.name!r} ({node.endpoint})"


@dataclass(frozen=True)
class Hello:
    """What a node says about itself."""

    version: str
    native: tuple[Platform, ...]
    emulated: tuple[Platform, ...]
    has_context: bool = False
    has_named: frozenset[str] = frozenset()  # named build contexts it holds already


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:])


def failure(node: Node, returncode: int, stderr: str, doing: str) -> Unavailable:
    """The error for a node command that failed, naming the node and what went wrong."""
    if returncode == SSH_EXIT:
        return Unavailable(
            f"{describe(node)} is unreachable or the connection was lost while {doing}: "
            f"{_tail(stderr) or 'ssh exited 255'}",
            hint="check that the node is up and `ssh` to it works (BALE_SSH_CONFIG "
            "names the ssh_config file bale passes to ssh -F)",
        )
    if returncode == 127:
        return Unavailable(
            f"{describe(node)}: bale was not found there: {_tail(stderr)}",
            hint="install bale on the node, or name it with --driver-opt bale=PATH",
        )
    if returncode < 0:
        return Unavailable(f"{describe(node)}: the node command was killed while {doing}")
    return Unavailable(
        f"{describe(node)} failed while {doing} (exit {returncode}): "
        f"{_tail(stderr) or 'no error text'}"
    )


def hello(node: Node, context: str = "") -> Hello:
    """Ask the node for its bale version and platforms (and whether it has `context`)."""
    argv = command(node, "hello", *(["--context", context] if context else []))
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=HELLO_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{describe(node)} did not answer within {HELLO_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise Unavailable(f"{describe(node)}: cannot run {argv[0]}: {exc.strerror}") from None
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise failure(node, proc.returncode, stderr, "asked for its version")
    try:
        data = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        return parse_hello(data)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise Unavailable(
            f"{describe(node)} answered something that is not bale's: "
            f"{_tail(proc.stdout.decode(errors='replace') + stderr)!r}",
            hint="the remote command must be bale (--driver-opt bale=PATH)",
        ) from None


def parse_hello(data: dict[str, object]) -> Hello:
    """A node's hello object (ValueError, KeyError, TypeError when it is not one)."""
    native = data.get("native", [])
    emulated = data.get("emulated", [])
    named = data.get("named") or {}
    assert isinstance(native, list) and isinstance(emulated, list) and isinstance(named, dict)
    return Hello(
        version=str(data["bale"]),
        native=tuple(Platform.parse(str(p)) for p in native),
        emulated=tuple(Platform.parse(str(p)) for p in emulated),
        has_context=bool(data.get("context", False)),
        has_named=frozenset(str(k) for k, v in named.items() if v),
    )


def require_version(node: Node, info: Hello) -> None:
    if info.version != __version__:
        raise FailedPrecondition(
            f"{describe(node)} runs bale {info.version}, this is bale {__version__}",
            hint="install the same bale version on every node of the builder",
        )


def start_build(node: Node, agent: str = "") -> subprocess.Popen[bytes]:
    argv = command(node, "build", agent=agent)
    env = {**os.environ, "SSH_AUTH_SOCK": agent} if agent else None
    try:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the coordinator, which cancels cleanly
        )
    except OSError as exc:
        raise Unavailable(f"{describe(node)}: cannot run {argv[0]}: {exc.strerror}") from None


def send_header(stdin: IO[bytes], header: dict[str, object]) -> None:
    stdin.write(json.dumps(header, sort_keys=True).encode() + b"\n")
