"""What a RUN step asks for (RunSpec and its mounts) and where its output goes (StepOutput)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from bale.oci import Platform

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOSTNAME = "buildkitsandbox"
Sharing = Literal["shared", "private", "locked"]
# "host" is BuildKit's name for what bale does by default: the host's network namespace.
Network = Literal["default", "host", "none"]


@dataclass(frozen=True)
class BindMount:
    """A host directory or file (build context, another stage's rootfs) at `target`.
    `hide` lists paths below a directory source that the step must not see (what
    .dockerignore leaves out of a context)."""

    target: str
    source: str
    readonly: bool = True
    hide: tuple[str, ...] = ()


@dataclass(frozen=True)
class CacheMount:
    """A directory that outlives the step, shared by every step naming the same `id`."""

    target: str
    id: str = ""  # "" uses the target path, as BuildKit does
    sharing: Sharing = "shared"
    readonly: bool = False
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    # --no-cache: the step starts from an empty directory, which becomes the cache's
    # content once the step succeeds (BuildKit gives an ignored-cache step a new ref).
    fresh: bool = False


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    size: int = 0  # bytes; 0 leaves the kernel default


@dataclass(frozen=True)
class SecretMount:
    """A secret as a file (by default at /run/secrets/<id>) and/or, with `env`, in that
    environment variable of the process; it never reaches a layer."""

    id: str
    data: bytes = field(repr=False)
    target: str = ""
    env: str = ""
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class SSHMount:
    """The host's ssh agent socket forwarded into the step; SSH_AUTH_SOCK points at it."""

    socket: str
    id: str = "default"
    target: str = ""
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


RunMount = BindMount | CacheMount | TmpfsMount | SecretMount | SSHMount


@dataclass(frozen=True)
class Ulimit:
    """A resource limit of the step's process (`--ulimit nofile=512:512`): RLIMIT_<NAME>."""

    name: str  # lower case, as docker writes it: nofile, nproc, core...
    soft: int  # -1: unlimited
    hard: int


@dataclass(frozen=True)
class RunSpec:
    """One process to run in a rootfs.

    `user` is "", a name, uid, or user:group (names resolved through the rootfs's
    /etc/passwd and /etc/group). `emulation` forces a mode ("auto", "native", "binfmt",
    "proot"); `platform` None means the host's.
    """

    argv: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    platform: Platform | None = None
    network: Network = "default"
    mounts: tuple[RunMount, ...] = ()
    hostname: str = DEFAULT_HOSTNAME
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (name, address) added to /etc/hosts
    emulation: str = "auto"
    shm_size: int = 0  # bytes of /dev/shm; 0 keeps the 64 MiB default
    ulimits: tuple[Ulimit, ...] = ()
    # "insecure" (RUN --security=insecure, with --allow security.insecure): every
    # capability, nothing masked in /proc or /sys.
    security: Literal["sandbox", "insecure"] = "sandbox"


class StepOutput(Protocol):
    """Where a step reports: output lines (fd 1 or 2, without the newline) and status text."""

    def output(self, fd: int, line: bytes) -> None: ...

    def status(self, text: str) -> None: ...


@dataclass
class CollectingOutput:
    """A StepOutput that keeps everything, for callers that just want the output."""

    lines: list[tuple[int, bytes]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def output(self, fd: int, line: bytes) -> None:
        self.lines.append((fd, line))

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def text(self, fd: int | None = None) -> str:
        return "\n".join(
            line.decode("utf-8", "replace") for f, line in self.lines if fd is None or f == fd
        )
