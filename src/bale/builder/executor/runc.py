"""The runc runner: an OCI runtime spec per step, `runc run` in the foreground."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from bale import owner
from bale.builder.executor.process import stream
from bale.builder.executor.sandbox import PlannedMount, PreparedStep
from bale.builder.executor.spec import RunSpec
from bale.builder.users import Identity


class _Unlinker:
    """Removes `paths` as soon as `marker` appears (or when stopped)."""

    def __init__(self, marker: Path, paths: list[Path]) -> None:
        self._marker = marker
        self._paths = paths
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.01):
            if self._marker.exists():
                break
        self._unlink()

    def _unlink(self) -> None:
        for path in self._paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self._unlink()


# Docker's and BuildKit's default capability set for build steps.
CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

# What `--security=insecure` gives (BuildKit's entitlement runs the step privileged).
ALL_CAPABILITIES = [
    f"CAP_{name}"
    for name in [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
    ]
]

_MASKED = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def runtime_spec(
    spec: RunSpec,
    rootfs: str,
    identity: Identity,
    env: list[str],
    mounts: list[PlannedMount],
) -> dict[str, Any]:
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if spec.network == "none":
        namespaces.append({"type": "network"})
    oci_mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", _shm_size(spec.shm_size)],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    if spec.network != "none":
        # Host networking has no network namespace of its own, so sysfs cannot be mounted.
        oci_mounts[-1] = {
            "destination": "/sys",
            "type": "bind",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
    for m in mounts:
        oci_mounts.append(
            {
                "destination": m.target,
                "type": m.type,
                "source": m.source,
                "options": list(m.options),
            }
        )
    insecure = spec.security == "insecure"
    capabilities = _bounded(ALL_CAPABILITIES) if insecure else CAPABILITIES
    process: dict[str, Any] = {
        "terminal": False,
        "user": {
            "uid": identity.uid,
            "gid": identity.gid,
            "additionalGids": list(identity.groups),
        },
        "args": list(spec.argv),
        "env": env,
        "cwd": spec.cwd or "/",
        "capabilities": {k: capabilities for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": False,
    }
    if spec.ulimits:
        process["rlimits"] = [
            {"type": f"RLIMIT_{u.name.upper()}", "soft": _limit(u.soft), "hard": _limit(u.hard)}
            for u in spec.ulimits
        ]
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": False},
        "hostname": spec.hostname,
        "mounts": oci_mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": [] if insecure else _MASKED,
            "readonlyPaths": [] if insecure else _READONLY,
        },
    }


def _bounded(caps: list[str]) -> list[str]:
    """The capabilities (listed in number order) this process can hand on: runc refuses
    one outside its bounding set (a container host may drop CAP_SYS_RESOURCE)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return [cap for bit, cap in enumerate(caps) if mask >> bit & 1]
    except (OSError, ValueError):
        pass
    return caps


def _shm_size(size: int) -> str:
    return f"size={size}" if size > 0 else "size=65536k"


def _limit(value: int) -> int:
    return 2**64 - 1 if value < 0 else value  # RLIM_INFINITY


class RuncRunner:
    def __init__(self, runc: str, state_dir: Path) -> None:
        self.runc = runc
        self.state = state_dir / "runc"
        # Container ids are reused: runc makes a cgroup per id, and making one under a
        # name it has seen before is about 10 ms cheaper (cgroup v1) than under a new one.
        self._free: list[str] = []
        self._count = 0
        self._lock = threading.Lock()

    def prune_orphans(self) -> list[str]:
        """Delete containers left by bale processes that are gone (killed mid-step)."""
        if not self.state.is_dir():
            return []
        removed: list[str] = []
        for entry in self.state.iterdir():
            parts = entry.name.split("-")
            if len(parts) != 3 or parts[0] != "bale" or owner.tag_alive(parts[1]):
                continue
            subprocess.run(
                [self.runc, "--root", str(self.state), "delete", "--force", entry.name],
                capture_output=True,
                check=False,
            )
            removed.append(entry.name)
        return removed

    def _take_id(self) -> str:
        with self._lock:
            if self._free:
                return self._free.pop()
            self._count += 1
            return f"bale-{owner.tag()}-{self._count}"

    def _give_back(self, container: str) -> None:
        with self._lock:
            self._free.append(container)

    def run(self, step: PreparedStep) -> int:
        config = runtime_spec(
            step.spec, step.rootfs, step.identity, list(step.env), list(step.mounts)
        )
        bundle = step.bundle
        (bundle / "config.json").write_text(json.dumps(config))
        # Once the process runs (runc writes its pid then), its mounts hold the secrets and
        # runc has read the config, which may hold a secret variable: both files go, so a
        # crash leaves neither behind. (A runc poststart hook would do it, but a hook's exit
        # made emulated steps hang in QEMU now and then.)
        pid_file = bundle / "pid"
        started = _Unlinker(
            pid_file,
            [bundle / "config.json", *(Path(m.source) for m in step.mounts if m.ephemeral)],
        )
        container = self._take_id()
        base = [self.runc, "--root", str(self.state)]

        def kill(proc: subprocess.Popen[bytes]) -> None:
            # Killing the container's init ends its whole pid namespace; delete reaps state.
            subprocess.run([*base, "kill", container, "KILL"], capture_output=True, check=False)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            subprocess.run(
                [*base, "delete", "--force", container], capture_output=True, check=False
            )

        try:
            code = stream(
                [
                    *base,
                    "run",
                    "--bundle",
                    str(bundle),
                    "--pid-file",
                    str(pid_file),
                    "--no-new-keyring",
                    container,
                ],
                step.output,
                on_interrupt=kill,
                linux32=step.linux32,
                env={**os.environ, "XDG_RUNTIME_DIR": str(self.state)},
            )
        finally:
            started.stop()
        # runc deletes a container that exited; one it could not start may linger.
        if (self.state / container).exists():
            subprocess.run(
                [*base, "delete", "--force", container], capture_output=True, check=False
            )
        if not (self.state / container).exists():
            self._give_back(container)
        return code
