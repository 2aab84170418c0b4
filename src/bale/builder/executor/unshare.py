"""The fallback runner: `unshare` for the namespaces, chroot (or proot) for the rootfs."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict

from bale.builder.executor import chroot_init
from bale.builder.executor.process import stream
from bale.builder.executor.sandbox import PreparedStep


@functools.lru_cache(maxsize=8)
def _needed_files(binary: str) -> tuple[str, ...]:
    """`binary` and the shared libraries it loads (as ldd names them)."""
    out = [binary]
    result = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        for word in line.split():
            if word.startswith("/") and os.path.exists(word) and word not in out:
                out.append(word)
    return tuple(out)


class UnshareRunner:
    def __init__(self, unshare: str) -> None:
        self.unshare = unshare

    def run(self, step: PreparedStep, *, proot: str = "", interpreter: str = "") -> int:
        """Run the step in new namespaces and a chroot (through proot + QEMU with `proot`)."""
        spec, identity, bundle = step.spec, step.identity, step.bundle
        config = {
            "rootfs": step.rootfs,
            "cwd": spec.cwd or "/",
            "argv": list(spec.argv),
            "env": list(step.env),
            "hostname": spec.hostname,
            "user": {"uid": identity.uid, "gid": identity.gid, "groups": list(identity.groups)},
            "mounts": [asdict(m) for m in step.mounts],
            "proot": proot,
            "interpreter": interpreter,
            "proot_host": "",
            "host_files": [],
        }
        if proot:
            skeleton = bundle / "proot-host"
            skeleton.mkdir()
            config["proot_host"] = str(skeleton)
            config["host_files"] = [*_needed_files(proot), interpreter]
        path = bundle / "init.json"
        path.write_text(json.dumps(config))
        argv = [
            self.unshare,
            "--mount",
            "--uts",
            "--ipc",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--propagation",
            "private",
        ]
        if spec.network == "none":
            argv.append("--net")
        argv += [sys.executable, "-S", "-I", chroot_init.__file__, str(path)]

        def kill(proc: subprocess.Popen[bytes]) -> None:
            # --kill-child: unshare's death SIGKILLs the namespace's init, and with it all.
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

        return stream(argv, step.output, on_interrupt=kill, linux32=step.linux32)
