"""Per-registry settings: mirrors, plain HTTP and TLS verification.

The file is TOML in buildkitd.toml's shape, read from `$BALE_REGISTRIES_CONFIG`, else
`$XDG_CONFIG_HOME/bale/registries.toml` (default `~/.config/bale/registries.toml`):

    [registry."docker.io"]
    mirrors = ["mirror.gcr.io"]

    [registry."registry.internal:5000"]
    http = true          # plain HTTP only
    insecure = true      # HTTPS without certificate verification, falling back to HTTP
    timeout = 300        # and any key of [limits], for this host only

    [limits]             # every registry: deadlines and minimum rate (limits.py)
    timeout = 60
    min_rate = 4096
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bale.errors import InvalidArgument
from bale.oci.reference import DEFAULT_DOMAIN
from bale.registry.limits import ENV, Limits

# Docker Hub's API lives on another host than the name people use for it.
DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class HostConfig:
    mirrors: tuple[str, ...] = ()
    http: bool = False
    insecure: bool = False
    limits: tuple[tuple[str, float], ...] = ()  # overrides of [limits] for this host


@dataclass(frozen=True)
class HostsConfig:
    """Settings by registry host; `insecure_all` is the `--insecure` flag."""

    hosts: tuple[tuple[str, HostConfig], ...] = ()
    insecure_all: bool = False
    source: str = field(default="", compare=False)
    limits: Limits = field(default_factory=Limits)  # [limits]: every host

    def get(self, host: str) -> HostConfig:
        for name, config in self.hosts:
            if name == host:
                return config
        return HostConfig()

    def mirrors(self, host: str) -> tuple[str, ...]:
        return self.get(host).mirrors

    def plain_http(self, host: str) -> bool:
        return self.get(host).http

    def insecure(self, host: str) -> bool:
        """Docker's rule: loopback registries may use plain HTTP without being configured."""
        return self.insecure_all or self.get(host).insecure or is_loopback(host)

    def with_insecure(self, insecure: bool) -> HostsConfig:
        return HostsConfig(self.hosts, insecure, self.source, self.limits)

    def limits_for(self, host: str) -> Limits:
        """[limits], then the host's own, then the environment (which wins)."""
        where = f"{self.source or 'registries config'}: registry.{host!r}"
        return self.limits.updated(dict(self.get(host).limits), where).with_environment()

    @classmethod
    def load(cls, path: Path | None = None) -> HostsConfig:
        path = path or default_config_path()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(source=str(path))
        try:
            doc = tomllib.loads(raw.decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"malformed registry config {path}: {exc}") from None
        table = doc.get("limits", {})
        if not isinstance(table, dict):
            raise InvalidArgument(f"malformed registry config {path}: [limits] must be a table")
        limits = Limits().updated(table, f"{path}: [limits]")
        registries = doc.get("registry", {})
        if not isinstance(registries, dict):
            raise InvalidArgument(f"malformed registry config {path}: [registry] must be a table")
        hosts: list[tuple[str, HostConfig]] = []
        for host, table in registries.items():
            if not isinstance(table, dict):
                raise InvalidArgument(f"malformed registry config {path}: registry.{host!r}")
            mirrors = table.get("mirrors", [])
            if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
                raise InvalidArgument(
                    f"malformed registry config {path}: registry.{host!r}.mirrors "
                    "must be a list of hosts"
                )
            overrides = {k: v for k, v in table.items() if k in ENV}
            # Checked now, so a bad value is reported with the file, not at the first pull.
            Limits().updated(overrides, f"{path}: registry.{host!r}")
            hosts.append(
                (
                    normalize_host(host),
                    HostConfig(
                        mirrors=tuple(normalize_host(m) for m in mirrors),
                        http=bool(table.get("http", False)),
                        insecure=bool(table.get("insecure", False)),
                        limits=tuple(sorted(overrides.items())),
                    ),
                )
            )
        return cls(tuple(hosts), source=str(path), limits=limits)


def default_config_path() -> Path:
    env = os.environ.get("BALE_REGISTRIES_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bale" / "registries.toml"


def normalize_host(text: str) -> str:
    """`https://index.docker.io/v1/` → `docker.io`; `http://h:5000/` → `h:5000`."""
    host = text.strip()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0]
    if host in ("index.docker.io", DOCKER_HUB_API, "registry.hub.docker.com"):
        return DEFAULT_DOMAIN
    if not host:
        raise InvalidArgument(f"invalid registry address {text!r}")
    return host


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain == DEFAULT_DOMAIN else domain


def hostname(host: str) -> str:
    """The host without its port (`[::1]:5000` → `::1`)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
