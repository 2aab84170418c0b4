"""Registry: references and a distribution API client.

    Registries        sessions by host (httpx transport seam, auth, retries)
    pull / ensure_image / fetch_layers      registry → store
    push_image                              store → registry
    imagetools.create / imagetools.inspect  remote indexes
"""

from bale.registry.client import RemoteDocument, Repository
from bale.registry.credentials import Credentials, DockerConfig
from bale.registry.hosts import HostConfig, HostsConfig
from bale.registry.pull import BaseImage, PullResult, ensure_image, fetch_layers, pull
from bale.registry.push import PushResult, push_image
from bale.registry.reference import Reference
from bale.registry.transfer import Progress, ProgressEvent
from bale.registry.transport import Registries, RegistryOptions, RetryPolicy

__all__ = [
    "BaseImage",
    "Credentials",
    "DockerConfig",
    "HostConfig",
    "HostsConfig",
    "Progress",
    "ProgressEvent",
    "PullResult",
    "PushResult",
    "Reference",
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
