"""What one platform's image was made from, read off the solved graph: the URLs it
downloaded, the secrets and SSH sockets its steps mounted, whether a step had network, and
every step in dependency order (what provenance records; see bale.exporters.provenance)."""

from __future__ import annotations

import hashlib

from bale.builder.ops.http import Downloads
from bale.builder.result import Download, MountUse, PlatformUsage, Step
from bale.frontends.graph import CopyOp, ExecOp, Graph, SecretMountSpec, SSHMountSpec
from bale.oci import canonical
from bale.oci.digest import Digest


def _reachable(graph: Graph, vertex: str) -> list[str]:
    """The vertices `vertex` depends on (itself included), dependencies first."""
    order: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(vertex, False)]
    while stack:
        digest, expanded = stack.pop()
        if expanded:
            order.append(digest)
            continue
        if digest in seen:
            continue
        seen.add(digest)
        stack.append((digest, True))
        for dep in reversed(graph.vertices[digest].inputs):
            if dep not in seen:
                stack.append((dep, False))
    return order


def platform_usage(graph: Graph, vertex: str, downloads: Downloads) -> PlatformUsage:
    fetched: dict[str, Download] = {}
    mounts: dict[tuple[str, str], MountUse] = {}
    network = False
    steps: list[Step] = []
    for digest in _reachable(graph, vertex):
        v = graph.vertices[digest]
        op = v.op
        steps.append(Step(digest, op.kind, canonical.dumps(op.definition()).decode(), v.inputs))
        if isinstance(op, CopyOp):
            for source in op.urls:
                found = downloads.fetched(source)
                if found is not None and source.url not in fetched:
                    sha = hashlib.sha256(found.data).hexdigest()
                    fetched[source.url] = Download(source.url, Digest("sha256", sha))
        elif isinstance(op, ExecOp):
            network = network or op.network != "none"
            for m in op.mounts:
                if isinstance(m, SecretMountSpec | SSHMountSpec):
                    kind: str = "secret" if isinstance(m, SecretMountSpec) else "ssh"
                    key = (kind, m.id)
                    # Required if any step requires it (BuildKit's AddSecret/AddSSH).
                    required = m.required or (key in mounts and mounts[key].required)
                    mounts[key] = MountUse("secret" if kind == "secret" else "ssh", m.id, required)
    return PlatformUsage(
        downloads=tuple(fetched[u] for u in sorted(fetched)),
        mounts=tuple(mounts[k] for k in sorted(mounts)),
        steps=tuple(steps),
        network=network,
    )
