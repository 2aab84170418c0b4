"""Registry: references and a distribution API client.

    Registries        sessions by host (httpx transport seam, auth, retries)
    pull / ensure_image / fetch_layers      registry → store
    push_image                              store → registry
    imagetools.create / imagetools.inspect  remote indexes

References are pure values (`bale.oci.reference`) and local bases a store query
(`bale.store.bases`); names here are imported on first use, so commands that never talk to a
registry do not pay for the HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bale.lazy import lazy_getattr

if TYPE_CHECKING:
    from bale.registry.client import RemoteDocument, Repository
    from bale.registry.credentials import Credentials, DockerConfig
    from bale.registry.hosts import HostConfig, HostsConfig
    from bale.registry.pulling import PullResult, ensure_image, fetch_layers, pull
    from bale.registry.push import PushResult, push_image
    from bale.registry.transfer import Progress, ProgressEvent
    from bale.registry.transport import Registries, RegistryOptions, RetryPolicy

_WHERE = {
    "Credentials": "credentials",
    "DockerConfig": "credentials",
    "HostConfig": "hosts",
    "HostsConfig": "hosts",
    "Progress": "transfer",
    "ProgressEvent": "transfer",
    "PullResult": "pulling",
    "PushResult": "push",
    "Registries": "transport",
    "RegistryOptions": "transport",
    "RemoteDocument": "client",
    "Repository": "client",
    "RetryPolicy": "transport",
    "ensure_image": "pulling",
    "fetch_layers": "pulling",
    "pull": "pulling",
    "push_image": "push",
}

__all__ = [
    "Credentials",
    "DockerConfig",
    "HostConfig",
    "HostsConfig",
    "Progress",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "Registries",
    "RegistryOptions",
    "RemoteDocument",
    "Repository",
    "RetryPolicy",
    "ensure_image",
    "fetch_layers",
    "pull",
    "push_image",
]


__getattr__ = lazy_getattr("bale.registry", _WHERE)
