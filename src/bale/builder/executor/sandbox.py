"""Everything a step needs around its rootfs, made before it runs and undone after.

Generated /etc/hosts and /etc/resolv.conf, secrets and the ssh socket are bind-mounted, so
they are never written into the rootfs. Mount points the runtime has to create (a missing
/proc, /run/secrets/x, the WORKDIR of a cache mount...) are remembered and removed after
the step when still empty, so they do not end up in the layer either.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bale.builder.executor.spec import (
    DEFAULT_PATH,
    BindMount,
    CacheMount,
    RunSpec,
    SecretMount,
    SSHMount,
    StepOutput,
    TmpfsMount,
)
from bale.builder.executor.sshrelay import AgentRelay
from bale.builder.users import Identity
from bale.errors import InvalidArgument, NotFound, Unavailable
from bale.mounts import mount, unmount
from bale.store.layers.rootpath import clean, resolve
from bale.trees import remove_tree

# Always mounted by the runtime; created when an image lacks them, removed again after.
SYSTEM_TARGETS = ("proc", "dev", "sys", "etc/hosts", "etc/resolv.conf")


@dataclass(frozen=True)
class PlannedMount:
    """A mount inside the container: host `source` (or a filesystem) at `target`."""

    target: str  # absolute, inside the rootfs
    type: str  # "bind" or "tmpfs"
    source: str
    options: tuple[str, ...]
    is_file: bool = False
    # The host file is removed as soon as it is mounted (a secret): a crash leaves none.
    ephemeral: bool = False


def cache_mount_dir(cache_root: Path, mount_id: str) -> Path:
    """Where the contents of `RUN --mount=type=cache,id=ID` live between builds."""
    return cache_root / hashlib.sha256(mount_id.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PreparedStep:
    """One step ready for a runtime: the rootfs mounted, the user resolved, the mounts
    planned, the bundle directory made. Runners (runc, unshare) take only this."""

    spec: RunSpec
    rootfs: str
    identity: Identity
    env: tuple[str, ...]
    mounts: tuple[PlannedMount, ...]
    bundle: Path
    output: StepOutput
    linux32: bool = False  # a 32-bit platform the 64-bit host runs natively


class Runner(Protocol):
    def run(self, step: PreparedStep) -> int: ...


def _hosts(spec: RunSpec) -> str:
    lines = [
        f"127.0.0.1\tlocalhost {spec.hostname}",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    lines += [f"{addr}\t{name}" for name, addr in spec.extra_hosts]
    return "\n".join(lines) + "\n"


def _resolv_conf() -> str:
    for candidate in ("/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"):
        try:
            text = Path(candidate).read_text()
        except OSError:
            continue
        # A local stub resolver is unreachable from another network namespace.
        servers = [
            line
            for line in text.splitlines()
            if line.startswith("nameserver") and "127.0.0." not in line
        ]
        if servers:
            other = [ln for ln in text.splitlines() if ln.startswith(("search", "options"))]
            return "\n".join(servers + other) + "\n"
    return "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


class Sandbox:
    """Host-side state of one step; `close()` undoes all of it."""

    def __init__(self, spec: RunSpec, rootfs: str, workdir: Path, cache_root: Path) -> None:
        self.spec = spec
        self.rootfs = rootfs
        self.workdir = workdir
        self.cache_root = cache_root
        self.mounts: list[PlannedMount] = []
        self.env: list[str] = list(spec.env)
        self._stubs: list[str] = []
        self._locks: list[int] = []
        self._host_mounts: list[str] = []
        self._relays: list[AgentRelay] = []
        # (new empty directory, the cache directory it replaces once the step succeeds,
        # the descriptor of that cache's use lock)
        self._fresh: list[tuple[Path, Path, int]] = []

    def prepare(self) -> None:
        files = self.workdir / "files"
        files.mkdir(mode=0o700)
        for target in SYSTEM_TARGETS:
            self.note_stub(target)
        hosts = files / "hosts"
        hosts.write_text(_hosts(self.spec))
        resolv = files / "resolv.conf"
        resolv.write_text(_resolv_conf())
        for path in (hosts, resolv):
            path.chmod(0o644)
        self.mounts.append(PlannedMount("/etc/hosts", "bind", str(hosts), ("rbind", "ro"), True))
        self.mounts.append(
            PlannedMount("/etc/resolv.conf", "bind", str(resolv), ("rbind", "ro"), True)
        )
        ssh_index = 0
        for i, m in enumerate(self.spec.mounts):
            if isinstance(m, BindMount):
                self._bind(m)
            elif isinstance(m, CacheMount):
                self._cache(m)
            elif isinstance(m, TmpfsMount):
                self._tmpfs(m)
            elif isinstance(m, SecretMount):
                self._secret(m, files, i)
            else:
                self._ssh(m, ssh_index)
                ssh_index += 1
        if not any(e.startswith("PATH=") for e in self.env):
            self.env.insert(0, f"PATH={DEFAULT_PATH}")

    # -- mounts ---------------------------------------------------------------------------

    def _target(self, target: str) -> str:
        rel = clean(target)
        if not rel:
            raise InvalidArgument(f"cannot mount over the root directory ({target!r})")
        self.note_stub(rel)
        return "/" + rel

    def _bind(self, m: BindMount) -> None:
        if not os.path.exists(m.source):
            raise NotFound(f"bind mount source {m.source} does not exist")
        is_file = not os.path.isdir(m.source)
        source = m.source
        if not m.readonly or (m.hide and not is_file):
            # As in BuildKit, writes to a read-write bind are the step's own: they go to a
            # scratch layer over the source and are dropped afterwards. Hidden paths are
            # whiteouts in that layer.
            source = self._scratch_over(m.source, is_file, m.hide)
        options = ("rbind", "ro" if m.readonly else "rw")
        self.mounts.append(PlannedMount(self._target(m.target), "bind", source, options, is_file))

    def _scratch_over(self, source: str, is_file: bool, hide: tuple[str, ...] = ()) -> str:
        base = self.workdir / f"rw-bind-{len(self._host_mounts) + len(self.mounts)}"
        base.mkdir()
        if is_file:
            copy = base / "file"
            shutil.copy2(source, copy)
            return str(copy)
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir()
        for rel in hide:
            # An overlay whiteout (a 0:0 character device) hides the lower entry.
            whiteout = base / "upper" / clean(rel)
            whiteout.parent.mkdir(parents=True, exist_ok=True)
            os.mknod(whiteout, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        merged = str(base / "merged")
        mount(
            "overlay",
            merged,
            "overlay",
            0,
            f"lowerdir={source},upperdir={base / 'upper'},workdir={base / 'work'}",
        )
        self._host_mounts.append(merged)
        return merged

    def _cache(self, m: CacheMount) -> None:
        ident = m.id or clean(m.target)
        self.cache_root.mkdir(parents=True, exist_ok=True)
        directory = cache_mount_dir(self.cache_root, ident)
        key = directory.name
        if m.sharing in ("locked", "private"):
            instance = 0
            while True:
                lock_path = self.cache_root / f"{directory.name}.lock"
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                flags = fcntl.LOCK_EX if m.sharing == "locked" else fcntl.LOCK_EX | fcntl.LOCK_NB
                try:
                    fcntl.flock(fd, flags)
                except BlockingIOError:
                    # private: the cache is in use, so this step gets another instance.
                    os.close(fd)
                    instance += 1
                    directory = self.cache_root / f"{key}.{instance}"
                    continue
                self._locks.append(fd)
                break
        # Every step using a cache holds its use lock shared: an old directory is removed
        # only when no step has it mounted.
        use = os.open(self.cache_root / f"{key}.use", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._locks.append(use)
        fcntl.flock(use, fcntl.LOCK_SH)
        if m.fresh:
            shared, directory = directory, self.cache_root / f"{key}.fresh-{uuid.uuid4().hex}"
            self._fresh.append((directory, shared, use))
        try:
            directory.mkdir(mode=m.mode)
        except FileExistsError:
            pass  # made by an earlier step, or by a shared step running now on another platform
        else:
            os.chown(directory, m.uid, m.gid)
            directory.chmod(m.mode)
        options = ("rbind", "ro" if m.readonly else "rw")
        self.mounts.append(PlannedMount(self._target(m.target), "bind", str(directory), options))

    def _tmpfs(self, m: TmpfsMount) -> None:
        options: tuple[str, ...] = ("nosuid", "nodev", "mode=1777")
        if m.size:
            options += (f"size={m.size}",)
        self.mounts.append(PlannedMount(self._target(m.target), "tmpfs", "tmpfs", options))

    def _secret(self, m: SecretMount, files: Path, index: int) -> None:
        if m.env:
            self.env.append(f"{m.env}={m.data.decode('utf-8', 'surrogateescape')}")
            if not m.target:
                return
        target = m.target or f"/run/secrets/{m.id}"
        path = files / f"secret-{index}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, m.data)
        finally:
            os.close(fd)
        os.chown(path, m.uid, m.gid)
        path.chmod(m.mode)
        self.mounts.append(
            PlannedMount(self._target(target), "bind", str(path), ("rbind", "ro"), True, True)
        )

    def _ssh(self, m: SSHMount, index: int) -> None:
        try:
            st = os.stat(m.socket)
        except FileNotFoundError as exc:
            raise NotFound(f"ssh agent socket {m.socket} does not exist") from exc
        if not stat.S_ISSOCK(st.st_mode):
            raise InvalidArgument(f"{m.socket} is not a socket")
        target = m.target or f"/run/buildkit/ssh_agent.{index}"
        relay = AgentRelay(m.socket, m.uid, m.gid, m.mode)
        self._relays.append(relay)
        self.mounts.append(
            PlannedMount(self._target(target), "bind", relay.path, ("rbind", "rw"), True)
        )
        if not any(e.startswith("SSH_AUTH_SOCK=") for e in self.env):
            self.env.append(f"SSH_AUTH_SOCK={target}")

    # -- stubs ----------------------------------------------------------------------------

    def note_stub(self, rel: str) -> None:
        """Remember each missing component of `rel`: the runtime will create them as mount
        points, and they must not reach the layer."""
        parts = rel.split("/")
        missing = False
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            host = resolve(self.rootfs, sub)
            if missing or not os.path.lexists(host):
                missing = True
                if host not in self._stubs:
                    self._stubs.append(host)
                continue
            if os.path.islink(host):
                return  # the runtime resolves it inside the rootfs; nothing new at this level

    def ensure_cwd(self) -> None:
        """Create the working directory if missing (it belongs in the layer, as with Docker)."""
        host = resolve(self.rootfs, clean(self.spec.cwd), follow_final=True, create_dirs=True)
        if not os.path.lexists(host):
            os.mkdir(host, 0o755)
        elif not os.path.isdir(host):
            raise InvalidArgument(f"working directory {self.spec.cwd} is not a directory")

    def remove_stubs(self) -> None:
        # Deepest first: a stub file, then the stub directories that held only stubs. What
        # the step itself wrote next to them (a file in a new /etc) stays.
        for host in sorted(self._stubs, key=len, reverse=True):
            _remove_stub(host)

    def keep_fresh(self) -> None:
        """After a successful step: its fresh cache directories replace the shared ones. A
        step still using an old one keeps its bind mount; the old directory goes after."""
        for fresh, shared, use in self._fresh:
            old = shared.with_name(f"{shared.name}.old-{uuid.uuid4().hex}")
            with contextlib.suppress(FileNotFoundError):
                os.rename(shared, old)
            os.rename(fresh, shared)
            try:
                fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # in use: a later --no-cache step of this cache removes it
            for stale in self.cache_root.glob(f"{shared.name}.old-*"):
                remove_tree(stale, ignore_errors=True)
            fcntl.flock(use, fcntl.LOCK_SH)
        self._fresh.clear()

    def close(self) -> None:
        for relay in self._relays:
            relay.close()
        self._relays.clear()
        for fresh, _, _ in self._fresh:
            remove_tree(fresh, ignore_errors=True)
        self._fresh.clear()
        for path in reversed(self._host_mounts):
            with contextlib.suppress(Unavailable):
                unmount(path, detach=True)
        self._host_mounts.clear()
        for fd in self._locks:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._locks.clear()
        remove_tree(self.workdir / "files", ignore_errors=True)


def _remove_stub(path: str) -> None:
    """Remove a mount-point stub: an empty regular file or an empty directory."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError):
            os.rmdir(path)  # only succeeds when empty
    elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
        os.unlink(path)
