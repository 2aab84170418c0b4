"""The RUN executor: one process in an isolated rootfs, natively or emulated.

    SandboxExecutor(state_dir).run(spec, rootfs_mounts, output) -> exit code

The rootfs (usually a prepared snapshot's mounts) is mounted for the step only. Namespaces:
mount, pid, uts, ipc, and network with `--network=none`. runc runs the step when it is
installed; otherwise `unshare` + chroot. A platform the host cannot run goes through its
binfmt_misc QEMU handler, or, without one, through proot + QEMU (see bale.emulation).
Whatever happens, the rootfs is unmounted, the runtime state removed and no process of the
step survives the call.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from bale import owner
from bale.builder.executor.runc import RuncRunner
from bale.builder.executor.sandbox import PlannedMount, PreparedStep, Sandbox
from bale.builder.executor.scratch import reclaim_step_dirs, scratch_dir
from bale.builder.executor.spec import RunSpec, StepOutput
from bale.builder.executor.unshare import UnshareRunner
from bale.builder.users import resolve_user
from bale.emulation.modes import Emulation, choose
from bale.errors import InvalidArgument, StepError, Unavailable
from bale.mounts import Mount, mount_all, plain_directory, unmount_all
from bale.oci import host_platform
from bale.trees import remove_tree

Runtime = Literal["auto", "runc", "unshare"]


def _linux32(emulation: Emulation) -> bool:
    """A 32-bit platform the 64-bit host runs natively (386 on amd64, arm on arm64)."""
    return (
        emulation.mode == "native"
        and emulation.platform.architecture in ("386", "arm")
        and host_platform().architecture in ("amd64", "arm64")
    )


class SandboxExecutor:
    """Runs steps; `state_dir` (e.g. `<bale-root>/executor`) holds runtime state and caches."""

    def __init__(
        self,
        state_dir: str | Path,
        *,
        runtime: Runtime = "auto",
        cache_root: str | Path | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.cache_root = Path(cache_root) if cache_root else self.state_dir / "cache"
        runc = shutil.which("runc") if runtime in ("auto", "runc") else None
        unshare = shutil.which("unshare")
        if runtime == "runc" and runc is None:
            raise Unavailable("runc is not installed", hint="apt-get install runc")
        if runc is None and unshare is None:
            raise Unavailable(
                "neither runc nor unshare is installed", hint="apt-get install runc util-linux"
            )
        self.runtime: Literal["runc", "unshare"] = "runc" if runc else "unshare"
        self._runc = RuncRunner(runc, self.state_dir) if runc else None
        self._unshare = UnshareRunner(unshare) if unshare else None

    def prune_orphans(self) -> list[str]:
        """Clean up after builds that were killed: their runtime containers (and the
        processes in them), step directories (mounts, generated files, secrets) and heredoc
        scratch; what was removed."""
        removed = self._runc.prune_orphans() if self._runc else []
        removed += reclaim_step_dirs(self._scratch())
        return removed

    def emulation_for(self, spec: RunSpec) -> Emulation:
        return choose(spec.platform or host_platform(), spec.emulation)

    def run(self, spec: RunSpec, rootfs_mounts: Sequence[Mount], progress: StepOutput) -> int:
        """Run `spec` on the rootfs described by `rootfs_mounts`; return its exit status."""
        if not spec.argv:
            raise InvalidArgument("a RUN step needs a command")
        if not spec.cwd.startswith("/"):
            raise InvalidArgument(f"working directory {spec.cwd!r} is not an absolute path")
        if spec.network not in ("default", "host", "none"):
            raise InvalidArgument(
                f"unsupported network mode {spec.network!r}", hint="use default, host or none"
            )
        emulation = self.emulation_for(spec)
        if emulation.label:
            progress.status(emulation.label)
        # Named by this process, so the one a killed build leaves is reclaimed (no window
        # between making the directory and recording who made it).
        workdir = Path(tempfile.mkdtemp(prefix=f"bale-step-{owner.tag()}-", dir=self._scratch()))
        direct = plain_directory(rootfs_mounts)
        rootfs = Path(direct) if direct else workdir / "rootfs"
        sandbox: Sandbox | None = None
        try:
            if not direct:
                rootfs.mkdir()
                mount_all(rootfs_mounts, str(rootfs))
            try:
                sandbox = Sandbox(spec, str(rootfs), workdir, self.cache_root)
                try:
                    identity = resolve_user(str(rootfs), spec.user)
                    sandbox.ensure_cwd()
                    sandbox.prepare()
                    mounts = list(sandbox.mounts)
                    if emulation.needs_interpreter_in_rootfs:
                        interp = emulation.interpreter
                        mounts.append(PlannedMount(interp, "bind", interp, ("rbind", "ro"), True))
                        sandbox.note_stub(interp.lstrip("/"))
                    step = PreparedStep(
                        spec=spec,
                        rootfs=str(rootfs),
                        identity=identity,
                        env=tuple(sandbox.env),
                        mounts=tuple(mounts),
                        bundle=workdir,
                        output=progress,
                        linux32=_linux32(emulation),
                    )
                    code = self._dispatch(step, emulation)
                    if code == 0:
                        sandbox.keep_fresh()
                    return code
                finally:
                    sandbox.remove_stubs()
                    sandbox.close()
            finally:
                if not direct:
                    unmount_all(str(rootfs))
        finally:
            remove_tree(workdir, ignore_errors=True)

    def _scratch(self) -> Path:
        return scratch_dir(self.state_dir)

    def _dispatch(self, step: PreparedStep, emulation: Emulation) -> int:
        if emulation.mode == "proot" or self._runc is None:
            _refuse_runc_only(step.spec)
        if emulation.mode == "proot":
            proot = shutil.which("proot")
            if self._unshare is None or proot is None:
                raise Unavailable("proot emulation needs proot and unshare installed")
            return self._unshare.run(step, proot=proot, interpreter=emulation.interpreter)
        if self._runc is not None:
            return self._runc.run(step)
        assert self._unshare is not None
        return self._unshare.run(step)

    def run_checked(
        self, spec: RunSpec, rootfs_mounts: Sequence[Mount], progress: StepOutput
    ) -> None:
        """run(), raising StepError when the command exits non-zero (as a RUN step does)."""
        code = self.run(spec, rootfs_mounts, progress)
        if code != 0:
            raise StepError(
                f"process {json.dumps(' '.join(spec.argv), ensure_ascii=False)} did not "
                f"complete successfully: exit code: {code}",
                exit_code=code,
            )


def _refuse_runc_only(spec: RunSpec) -> None:
    """What only the runc runner applies must not be dropped silently by the other one."""
    asked = [
        what
        for what, given in (
            ("--shm-size", spec.shm_size > 0),
            ("--ulimit", bool(spec.ulimits)),
            ("RUN --security=insecure", spec.security == "insecure"),
        )
        if given
    ]
    if asked:
        raise Unavailable(
            " and ".join(asked) + " need the runc runner, and this step runs without it",
            hint="install runc; proot emulation cannot apply them either",
        )
