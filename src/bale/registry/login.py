"""`bale login` / `bale logout`: check credentials against the registry, then keep them."""

from __future__ import annotations

from bale.errors import RegistryError
from bale.registry.credentials import Credentials, DockerConfig
from bale.registry.hosts import normalize_host
from bale.registry.transport import Registries


def login(registries: Registries, server: str, credentials: Credentials) -> str:
    """Verify the credentials (as `docker login` does) and store them; returns the host."""
    host = normalize_host(server)
    session = registries.session(host, credentials)
    session.ping()
    what = f"login {host}"
    challenge = session.challenge
    if challenge is not None and challenge.scheme == "bearer":
        session.token((), what=what)
    elif challenge is not None:
        response = session.request("GET", "/v2/", what=what)
        response.read()
        if response.status_code in (401, 403):
            raise RegistryError(
                f"{what}: {response.status_code} unauthorized: incorrect username or password",
                status=response.status_code,
                code="UNAUTHORIZED",
            )
        if response.status_code != 200:
            raise RegistryError(
                f"{what}: {response.status_code} {response.reason_phrase}",
                status=response.status_code,
            )
    config = registries.options.docker_config or DockerConfig()
    config.store(host, credentials)
    return host


def logout(server: str, config: DockerConfig | None = None) -> tuple[str, bool]:
    """Forget a registry's credentials; (host, whether there were any)."""
    host = normalize_host(server)
    return host, (config or DockerConfig()).erase(host)
