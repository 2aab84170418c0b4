"""Builder nodes for tests and benchmarks: each node is a real `sshd -D` on 127.0.0.1 at a
free port with its own host key, authorized key and bale root, reached through a generated
ssh_config file (BALE_SSH_CONFIG) by a host alias, as a user's ~/.ssh/config would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support import REPO, _listening, free_port, stop_process, wait_until

SSHD = "/usr/sbin/sshd"
BALE = REPO / ".venv" / "bin" / "bale"


def sshd_available() -> str:
    """Why nodes cannot run here, or ""."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None:
        return "openssh-server/openssh-client are not installed (scripts/setup-host.sh)"
    if os.geteuid() != 0:
        return "nodes run as root (sshd with its own config)"
    if not BALE.exists():
        return f"{BALE} is missing: the node's bale is this checkout's venv"
    return ""


@dataclass
class SshNode:
    name: str
    directory: Path
    port: int
    root: Path  # the node's bale root
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "sshd.log"

    @property
    def endpoint(self) -> str:
        return f"ssh://{self.name}"  # an alias of the ssh_config file

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.directory / "sshd_config")],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_until(f"sshd for node {self.name}", _listening(self.port), self.proc, self.log)

    def kill(self) -> None:
        """The machine dies: sshd and every session and build under it, at once."""
        if self.proc is None:
            return
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            for pid in descendants(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            stop_process(self.proc)
            self.proc = None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class NodeSet:
    """Nodes sharing one client key and one ssh_config file."""

    directory: Path
    config: Path
    nodes: dict[str, SshNode] = field(default_factory=dict)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


def start_nodes(directory: Path, names: list[str]) -> NodeSet:
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    client_key = directory / "client_key"
    client_pub = _keygen(client_key)
    config = directory / "ssh_config"
    known = directory / "known_hosts"
    nodes = NodeSet(directory, config)
    config_text = []
    known_lines = []
    for name in names:
        d = directory / name
        d.mkdir()
        host_pub = _keygen(d / "host_key")
        (d / "authorized_keys").write_text(client_pub + "\n")
        port = free_port()
        (d / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n"
            "UsePAM no\nLogLevel ERROR\nSetEnv PYTHONDONTWRITEBYTECODE=1\n"
        )
        config_text.append(
            f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
            f"  IdentityFile {client_key}\n  IdentitiesOnly yes\n  HostKeyAlias {name}\n"
            f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n"
        )
        known_lines.append(f"{name} {' '.join(host_pub.split()[:2])}")
        node = SshNode(name, d, port, d / "bale-root")
        node.start()
        nodes.nodes[name] = node
    config.write_text("\n".join(config_text))
    known.write_text("\n".join(known_lines) + "\n")
    return nodes
