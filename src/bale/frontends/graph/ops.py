"""Typed build operations. Each op is a frozen value whose `definition()` is its one canonical
serialisation: what a vertex digest and a cache key hash. Fields that reach the step but must
not change its identity (proxy variables) are left out of the definition on purpose.

Inputs are the vertex's, in order: input 0 is the filesystem the op works on (none for the
sources); an op that reads another filesystem (COPY --from, RUN --mount from=) names it by
its index in the vertex inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from bale.oci.digest import Digest
from bale.oci.platform import Platform


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ImageOp:
    """A base image's filesystem for one platform (FROM, COPY --from, RUN --mount from=)."""

    ref: str  # as the Dockerfile names it (after named contexts are applied)
    manifest: Digest  # the platform manifest it resolved to
    platform: Platform  # the platform it was resolved for
    resolved: str = ""  # what the reference resolved to (index or manifest), for provenance

    kind = "image"

    def definition(self) -> dict[str, Any]:
        return {"ref": self.ref, "manifest": str(self.manifest), "platform": str(self.platform)}


@dataclass(frozen=True)
class ScratchOp:
    """The empty filesystem."""

    kind = "scratch"

    def definition(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class BindMountSpec:
    """A directory or file bind-mounted into the step: from a vertex input (`input`), else
    from a local context (`context`: "" is the main build context, else a named one)."""

    target: str
    source: str = ""
    input: int | None = None
    context: str = ""
    readonly: bool = True

    def definition(self) -> dict[str, Any]:
        return {
            "type": "bind",
            "target": self.target,
            "source": self.source,
            "input": self.input,
            "context": self.context,
            "readonly": self.readonly,
        }


Sharing = Literal["shared", "private", "locked"]


@dataclass(frozen=True)
class CacheMountSpec:
    target: str
    id: str
    sharing: Sharing = "shared"
    readonly: bool = False
    mode: int = 0o755
    uid: int = 0
    gid: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "type": "cache",
            "target": self.target,
            "id": self.id,
            "sharing": self.sharing,
            "readonly": self.readonly,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
        }


@dataclass(frozen=True)
class TmpfsMountSpec:
    target: str
    size: int = 0  # bytes; 0 leaves the kernel default

    def definition(self) -> dict[str, Any]:
        return {"type": "tmpfs", "target": self.target, "size": self.size}


@dataclass(frozen=True)
class SecretMountSpec:
    """A secret by id: as a file at `target` and/or in the environment variable `env`."""

    id: str
    target: str = ""
    env: str = ""
    mode: int = 0o400
    uid: int = 0
    gid: int = 0
    required: bool = False

    def definition(self) -> dict[str, Any]:
        return {
            "type": "secret",
            "id": self.id,
            "target": self.target,
            "env": self.env,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "required": self.required,
        }


@dataclass(frozen=True)
class SSHMountSpec:
    id: str = "default"
    target: str = ""
    mode: int = 0o600
    uid: int = 0
    gid: int = 0
    required: bool = False

    def definition(self) -> dict[str, Any]:
        return {
            "type": "ssh",
            "id": self.id,
            "target": self.target,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "required": self.required,
        }


MountSpec = BindMountSpec | CacheMountSpec | TmpfsMountSpec | SecretMountSpec | SSHMountSpec


@dataclass(frozen=True)
class InlineFile:
    """Bytes given in the Dockerfile itself (a heredoc): a file a RUN mounts read-only, or a
    COPY source named `path`."""

    path: str
    data: bytes = field(repr=False)
    mode: int = 0o755
    # A downloaded file's Last-Modified (seconds), which it keeps as its mtime, as BuildKit.
    mtime: float | None = None

    def definition(self) -> list[Any]:
        return [self.path, self.mode, _sha(self.data)]


@dataclass(frozen=True)
class UrlSource:
    """ADD <url>: downloaded when the step's cache key is computed (its content is the key)."""

    url: str
    checksum: str = ""  # --checksum, "algorithm:hex"

    def definition(self) -> list[str]:
        return [self.url, self.checksum]


Network = Literal["default", "host", "none"]


@dataclass(frozen=True)
class ExecOp:
    """RUN: a process in a snapshot of input 0, natively or emulated for `platform`."""

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    platform: Platform = field(default_factory=lambda: Platform("linux", "amd64"))
    network: Network = "default"
    security: Literal["sandbox", "insecure"] = "sandbox"
    mounts: tuple[MountSpec, ...] = ()
    files: tuple[InlineFile, ...] = ()
    # Reaches the process, not the cache key: BuildKit passes proxy build-args this way.
    proxy_env: tuple[str, ...] = ()
    # --add-host, --shm-size, --ulimit: part of the key when given, as in BuildKit's Meta.
    extra_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int = 0
    ulimits: tuple[tuple[str, int, int], ...] = ()  # (name, soft, hard)
    hostname: str = ""  # BUILDKIT_SANDBOX_HOSTNAME; "" is the sandbox's default name

    kind = "exec"

    def definition(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "env": list(self.env),
            "cwd": self.cwd,
            "user": self.user,
            "platform": str(self.platform),
            "network": self.network,
            "security": self.security,
            "mounts": [m.definition() for m in self.mounts],
            "files": [f.definition() for f in self.files],
            # Only when set, so existing steps keep their keys.
            **({"extraHosts": [list(h) for h in self.extra_hosts]} if self.extra_hosts else {}),
            **({"shmSize": self.shm_size} if self.shm_size else {}),
            **({"ulimits": [list(u) for u in self.ulimits]} if self.ulimits else {}),
            **({"hostname": self.hostname} if self.hostname else {}),
        }


@dataclass(frozen=True)
class CopyOp:
    """COPY/ADD onto input 0. Sources come from a local context (`context`: "" is the main
    one) or, with `from_input`, from the filesystem of vertex input 1."""

    sources: tuple[str, ...]
    dest: str  # absolute in the image; a trailing "/" means a directory
    chown: str = ""  # as written ("" keeps: 0:0 for context files, owners for --from)
    chmod: str = ""  # octal or symbolic, as written
    add: bool = False  # ADD: local archives are extracted
    contents: tuple[InlineFile, ...] = ()  # heredoc sources
    urls: tuple[UrlSource, ...] = ()
    parents: bool = False
    excludes: tuple[str, ...] = ()
    link: bool = False
    context: str = ""
    from_input: bool = False
    unpack_urls: bool = False  # ADD --unpack=true: downloaded archives are extracted too

    kind = "copy"

    def definition(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"unpack_urls": True} if self.unpack_urls else {}
        return extra | {
            "sources": list(self.sources),
            "dest": self.dest,
            "chown": self.chown,
            "chmod": self.chmod,
            "add": self.add,
            "contents": [c.definition() for c in self.contents],
            "urls": [u.definition() for u in self.urls],
            "parents": self.parents,
            "excludes": list(self.excludes),
            "link": self.link,
            "context": self.context,
            "from_input": self.from_input,
        }


@dataclass(frozen=True)
class MkdirOp:
    """WORKDIR's directory, made with its missing parents owned by `user`."""

    path: str
    user: str = ""

    kind = "mkdir"

    def definition(self) -> dict[str, Any]:
        return {"path": self.path, "user": self.user}


Op = ImageOp | ScratchOp | ExecOp | CopyOp | MkdirOp
