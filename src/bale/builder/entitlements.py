"""What RUN steps may do, checked over the whole graph before any step runs.

`--allow` entitlements, as BuildKit grants them: `RUN --network=host` needs
`network.host`, `RUN --security=insecure` needs `security.insecure`. A RUN for a
WebAssembly platform is refused: nothing here runs it."""

from __future__ import annotations

from collections.abc import Iterable

from bale.errors import DockerfileError, InvalidArgument
from bale.frontends.graph import ExecOp, Vertex

NETWORK_HOST = "network.host"
SECURITY_INSECURE = "security.insecure"
KNOWN = (NETWORK_HOST, SECURITY_INSECURE)


def parse_allow(values: tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if item not in KNOWN:
                raise InvalidArgument(
                    f"invalid entitlement {item!r} in --allow",
                    hint="bale grants "
                    + " and ".join(KNOWN)
                    + " (device and fs entitlements are not supported)",
                )
            out.add(item)
    return frozenset(out)


def check_entitlements(vertices: Iterable[Vertex], allow: frozenset[str]) -> None:
    for v in vertices:
        if not isinstance(v.op, ExecOp):
            continue
        needed = ""
        if v.op.network == "host" and NETWORK_HOST not in allow:
            needed, what = NETWORK_HOST, "RUN --network=host"
        elif v.op.security == "insecure" and SECURITY_INSECURE not in allow:
            needed, what = SECURITY_INSECURE, "RUN --security=insecure"
        if needed:
            loc = v.location
            raise DockerfileError(
                f"{what} needs the {needed} entitlement, which this build was not granted",
                source=loc.source if loc else None,
                lines=loc.lines if loc else (),
                hint=f"add --allow {needed} to the build",
            )


# Platforms whose programs no kernel here runs: a RUN for them has no executor or emulator.
NOT_RUNNABLE_OS = frozenset({"wasi", "wasip1", "js"})


def check_runnable(vertices: Iterable[Vertex]) -> None:
    """Refuse a RUN for a WebAssembly platform before any step: there is nothing to run it
    (FROM scratch, COPY and ADD build such images)."""
    for v in vertices:
        if isinstance(v.op, ExecOp) and v.op.platform.os in NOT_RUNNABLE_OS:
            loc = v.location
            raise DockerfileError(
                f"RUN is not supported for platform {v.op.platform}: bale has no runtime or "
                "emulator for WebAssembly",
                source=loc.source if loc else None,
                lines=loc.lines if loc else (),
                hint="build wasm images FROM scratch with COPY/ADD of the compiled module, "
                "or compile it in a stage FROM --platform=$BUILDPLATFORM",
            )
