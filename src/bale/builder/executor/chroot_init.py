"""First process of a step run without runc, inside fresh namespaces made by `unshare`.

Run as a script (`python3 -S chroot_init.py CONFIG.json`), it imports nothing from bale so
it starts fast. It mounts /proc, a minimal /dev and the step's mounts into the rootfs,
then either chroots and execs the command, or execs proot (emulation without binfmt).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

_libc = ctypes.CDLL(None, use_errno=True)
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    rc = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _make_target(path: str, is_file: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if is_file:
        with open(path, "a"):
            pass
    else:
        os.mkdir(path, 0o755)


def _inside(rootfs: str, target: str) -> str:
    # Targets are cleaned by the executor; resolve symlinks as the rootfs sees them.
    path = rootfs
    for part in [p for p in target.split("/") if p]:
        candidate = os.path.join(path, part)
        hops = 0
        while os.path.islink(candidate) and hops < 40:
            link = os.readlink(candidate)
            base = rootfs if link.startswith("/") else path
            candidate = os.path.normpath(os.path.join(base, link.lstrip("/")))
            if not (candidate + "/").startswith(rootfs.rstrip("/") + "/"):
                candidate = rootfs
            hops += 1
        path = candidate
    return path


def _enter_proot_host(cfg: dict[str, object], rootfs: str) -> None:
    """Chroot into a tmpfs holding only proot, its libraries, QEMU and the rootfs.

    proot -q shows its host's root at /host-rootfs in the guest: that host must not be ours.
    """
    host = str(cfg["proot_host"])
    _mount("tmpfs", host, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    files = cfg["host_files"]
    assert isinstance(files, list)
    for path in files:
        target = host + path
        _make_target(target, True)
        _mount(os.path.realpath(path), target, None, MS_BIND)
        _mount("", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    guest = os.path.join(host, "rootfs")
    os.mkdir(guest)
    _mount(rootfs, guest, None, MS_BIND | MS_REC)
    for name in ("proc", "dev", "tmp"):
        os.mkdir(os.path.join(host, name), 0o1777 if name == "tmp" else 0o755)
    _mount("proc", os.path.join(host, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(os.path.join(rootfs, "dev"), os.path.join(host, "dev"), None, MS_BIND | MS_REC)
    _mount("tmpfs", os.path.join(host, "tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    os.chroot(host)
    os.chdir("/")


def main() -> None:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    # It may hold secret values (a secret as an environment variable): read once, gone.
    os.unlink(sys.argv[1])
    rootfs: str = cfg["rootfs"]
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    _mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    proc = _inside(rootfs, "/proc")
    _make_target(proc, False)
    _mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    dev = _inside(rootfs, "/dev")
    _make_target(dev, False)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in _DEVICES:
        node = os.path.join(dev, name)
        _make_target(node, True)
        _mount(f"/dev/{name}", node, None, MS_BIND)
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, os.path.join(dev, link))
    os.mkdir(os.path.join(dev, "shm"), 0o1777)
    _mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for m in cfg["mounts"]:
        target = _inside(rootfs, m["target"])
        _make_target(target, m["is_file"])
        if m["type"] == "bind":
            _mount(m["source"], target, None, MS_BIND | MS_REC)
            if "ro" in m["options"]:
                _mount("", target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
            if m.get("ephemeral"):
                os.unlink(m["source"])  # a secret: the mount keeps it, no file is left
        else:
            data = ",".join(o for o in m["options"] if o not in ("nosuid", "nodev"))
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data)
    _libc.sethostname(cfg["hostname"].encode(), len(cfg["hostname"].encode()))
    env = dict(e.split("=", 1) for e in cfg["env"] if "=" in e)
    user = cfg["user"]
    if cfg.get("proot"):
        _enter_proot_host(cfg, rootfs)
        argv = [
            cfg["proot"],
            "-q",
            cfg["interpreter"],
            "-r",
            "/rootfs",
            "-w",
            cfg["cwd"],
            *cfg["argv"],
        ]
        os.setgroups(user["groups"])
        os.setgid(user["gid"])
        os.setuid(user["uid"])
        os.execve(argv[0], argv, env)
    os.chroot(rootfs)
    os.chdir(cfg["cwd"])
    os.setgroups(user["groups"])
    os.setgid(user["gid"])
    os.setuid(user["uid"])
    _exec(cfg["argv"], env)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    # A PATH search by hand: os.execvpe imports modules, which the chroot does not have.
    command = argv[0]
    candidates = (
        [command]
        if "/" in command
        else [f"{d or '.'}/{command}" for d in env.get("PATH", "/usr/bin:/bin").split(":")]
    )
    error = "not found"
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            try:
                os.execve(path, argv, env)
            except OSError as exc:
                error = exc.strerror or str(exc)
    sys.stderr.write(f"exec {command}: {error}\n")
    sys.stderr.flush()
    os._exit(127)


if __name__ == "__main__":
    main()
