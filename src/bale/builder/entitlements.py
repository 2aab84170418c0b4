"""`--allow` entitlements, as BuildKit grants them: `RUN --network=host` needs
`network.host`, `RUN --security=insecure` needs `security.insecure`. Checked over the whole
graph before any step runs."""

from __future__ import annotations

from bale.errors import DockerfileError, InvalidArgument
from bale.frontends.graph import BuildDefinition, ExecOp

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
                    hint="bale grants " + " and ".join(KNOWN)
                    + " (device and fs entitlements are not supported)",
                )
            out.add(item)
    return frozenset(out)


def check_entitlements(definition: BuildDefinition, allow: frozenset[str]) -> None:
    for v in definition.graph.vertices.values():
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
