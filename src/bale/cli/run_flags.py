"""Flags for the RUN steps of a build, as buildx takes them: `--add-host`, `--shm-size`,
`--ulimit`, `--allow`, `--cgroup-parent`. Read and checked before any step."""

from __future__ import annotations

import argparse
import ipaddress
import re
import resource
from dataclasses import dataclass

from bale.builder.entitlements import parse_allow
from bale.errors import InvalidArgument

# Steps share the host's network namespace (bale's default network), so the host is here.
HOST_GATEWAY_IP = "127.0.0.1"
_ULIMITS = {
    "as": resource.RLIMIT_AS,
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": 10,  # RLIMIT_LOCKS on Linux; Python does not name it
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
}
_SIZE = re.compile(r"(\d+)\s*([bkmg]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@dataclass(frozen=True)
class RunFlags:
    extra_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int = 0
    ulimits: tuple[tuple[str, int, int], ...] = ()
    allow: frozenset[str] = frozenset()
    cgroup_parent: str = ""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--add-host",
        action="append",
        default=[],
        metavar="HOST:IP",
        help="add a host to RUN's /etc/hosts (IP may be host-gateway)",
    )
    p.add_argument(
        "--shm-size",
        default="",
        metavar="BYTES",
        help="size of RUN's /dev/shm, e.g. 128m (default 64m)",
    )
    p.add_argument(
        "--ulimit",
        action="append",
        default=[],
        metavar="NAME=SOFT[:HARD]",
        help="resource limit of RUN's processes, e.g. nofile=1024:1024",
    )
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ENTITLEMENT",
        help="grant network.host or security.insecure to RUN steps",
    )
    p.add_argument(
        "--cgroup-parent",
        default="",
        metavar="CGROUP",
        help="accepted for buildx compatibility; steps run in runc's own cgroup",
    )


def parse_add_host(text: str) -> tuple[str, str]:
    """`host:ip` or `host=ip` (buildx takes both), ip possibly IPv6 or `host-gateway`."""
    sep = "=" if "=" in text else ":"
    name, found, addr = text.partition(sep)
    addr = addr.strip("[]")
    if not found or not name or not addr:
        raise InvalidArgument(f"invalid --add-host {text!r}", hint="use --add-host HOST:IP")
    if addr == "host-gateway":
        return name, HOST_GATEWAY_IP
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise InvalidArgument(
            f"invalid IP address {addr!r} in --add-host {text!r}",
            hint="use an IPv4 or IPv6 address, or host-gateway",
        ) from None
    return name, addr


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidArgument(f"invalid --shm-size {text!r}", hint="use bytes, e.g. 128m or 1g")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _limit_value(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"invalid --ulimit {flag!r}: {text!r} is not a number") from None
    if value < -1:
        raise InvalidArgument(f"invalid --ulimit {flag!r}: {value} is below -1 (unlimited)")
    return value


def parse_ulimit(text: str) -> tuple[str, int, int]:
    """`name=soft[:hard]`; a hard limit above this process's cannot be given (raising a
    limit needs CAP_SYS_RESOURCE, which a build host may not have)."""
    name, found, values = text.partition("=")
    if not found or name not in _ULIMITS:
        raise InvalidArgument(
            f"invalid --ulimit {text!r}",
            hint="use NAME=SOFT[:HARD] with NAME one of " + ", ".join(sorted(_ULIMITS)),
        )
    soft_text, _, hard_text = values.partition(":")
    soft = _limit_value(soft_text, text)
    hard = _limit_value(hard_text, text) if hard_text else soft
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgument(f"invalid --ulimit {text!r}: soft limit above the hard limit")
    _, current = resource.getrlimit(_ULIMITS[name])
    unlimited = current == resource.RLIM_INFINITY
    if not unlimited and (hard == -1 or hard > current):
        raise InvalidArgument(
            f"--ulimit {text}: cannot raise the {name} limit above {current} here",
            hint=f"the build runs with a hard {name} limit of {current}; a step can only lower it",
        )
    return name, soft, hard


def parse_run_flags(args: argparse.Namespace) -> RunFlags:
    return RunFlags(
        # A stringSlice in buildx: one flag may hold several comma-separated entries.
        extra_hosts=tuple(
            parse_add_host(h) for value in args.add_host for h in value.split(",") if h
        ),
        shm_size=parse_size(args.shm_size) if args.shm_size else 0,
        ulimits=tuple(parse_ulimit(u) for u in args.ulimit),
        allow=parse_allow(tuple(args.allow)),
        cgroup_parent=args.cgroup_parent,
    )
