"""RUN: the process of an ExecOp in a prepared snapshot, with its mounts.

Bind mounts read a vertex input's filesystem (a stage or an image, mounted read-only for the
step) or a local context; heredoc files are written to memory-backed scratch and mounted
read-only, as BuildKit mounts them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bale import owner
from bale.builder import progress as pg
from bale.builder.runtime import Runtime
from bale.builder.state import FsState
from bale.errors import StepError
from bale.frontends.dockerfile.history import go_quote
from bale.frontends.graph import (
    BindMountSpec,
    CacheMountSpec,
    ExecOp,
    SecretMountSpec,
    SSHMountSpec,
    TmpfsMountSpec,
    Vertex,
)
from bale.mounts import Mount
from bale.store.layers.rootpath import resolve

if TYPE_CHECKING:
    from bale.builder.executor import RunMount

# Small per-step files live in memory when the machine has /dev/shm.
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None


class StepOutput:
    """Adapts the executor's output to progress events of the step's vertex."""

    def __init__(self, sink: pg.ProgressSink, v: Vertex) -> None:
        self._sink = sink
        self._v = v

    def output(self, fd: int, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        self._sink.emit(
            pg.Event(
                "log",
                self._v.digest,
                self._v.name,
                message=text,
                platform=self._v.platform,
                stream=fd,
            )
        )

    def status(self, text: str) -> None:
        self._sink.emit(
            pg.Event(
                "status", self._v.digest, self._v.name, message=text, platform=self._v.platform
            )
        )


def run_exec(
    rt: Runtime,
    v: Vertex,
    op: ExecOp,
    rootfs_mounts: tuple[Mount, ...],
    inputs: Sequence[FsState],
) -> None:
    from bale.builder import executor as ex
    from bale.builder.executor.spec import DEFAULT_HOSTNAME

    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(
            tempfile.TemporaryDirectory(prefix=f"bale-heredoc-{owner.tag()}-", dir=_SCRATCH)
        )
        # Executable heredocs (`#!` bodies) are files mounted read-only, as in BuildKit.
        files: list[RunMount] = []
        for i, f in enumerate(op.files):
            host = os.path.join(scratch, str(i))
            with open(host, "wb") as out:
                out.write(f.data)
            os.chmod(host, f.mode)
            files.append(ex.BindMount(target=f.path, source=host, readonly=True))
        mounts = _mounts(rt, v, op, inputs, stack)
        spec = ex.RunSpec(
            argv=op.argv,
            # As containerd's WithHostname, which BuildKit uses: HOSTNAME in the env.
            env=(*op.env, *op.proxy_env, *((f"HOSTNAME={op.hostname}",) if op.hostname else ())),
            cwd=op.cwd,
            user=op.user,
            platform=op.platform,
            network="none" if op.network == "none" else "default",
            mounts=(*mounts, *files),
            extra_hosts=op.extra_hosts,
            shm_size=op.shm_size,
            ulimits=tuple(ex.Ulimit(name, soft, hard) for name, soft, hard in op.ulimits),
            security=op.security,
            hostname=op.hostname or DEFAULT_HOSTNAME,
        )
        code = rt.executor().run(spec, rootfs_mounts, StepOutput(rt.sink, v))
    if code != 0:
        raise StepError(
            f"failed to solve: process {go_quote(' '.join(spec.argv))} did not complete "
            f"successfully: exit code: {code}",
            vertex=v.digest,
            source=v.location.source if v.location else None,
            lines=v.location.lines if v.location else (),
            exit_code=code,
        )


def _mounts(
    rt: Runtime,
    v: Vertex,
    op: ExecOp,
    inputs: Sequence[FsState],
    stack: contextlib.ExitStack,
) -> list[RunMount]:
    from bale.builder import executor as ex

    out: list[RunMount] = []
    for m in op.mounts:
        if isinstance(m, CacheMountSpec):
            out.append(
                ex.CacheMount(
                    target=m.target,
                    id=m.id,
                    sharing=m.sharing,
                    readonly=m.readonly,
                    mode=m.mode,
                    uid=m.uid,
                    gid=m.gid,
                    fresh=v.ignore_cache,
                )
            )
        elif isinstance(m, TmpfsMountSpec):
            out.append(ex.TmpfsMount(target=m.target, size=m.size))
        elif isinstance(m, SecretMountSpec):
            data = rt.env.secrets.get(m.id)
            if data is None:
                if m.required:
                    raise _error(
                        v, f"secret {m.id}: not found", f"pass it with --secret id={m.id},src=FILE"
                    )
                continue
            out.append(
                ex.SecretMount(
                    id=m.id,
                    data=data,
                    target=m.target,
                    env=m.env,
                    mode=m.mode,
                    uid=m.uid,
                    gid=m.gid,
                )
            )
        elif isinstance(m, SSHMountSpec):
            if not rt.env.ssh_socket:
                if m.required:
                    raise _error(v, "no SSH agent socket: pass --ssh default", "")
                continue
            out.append(
                ex.SSHMount(
                    socket=rt.env.ssh_socket,
                    id=m.id,
                    target=m.target,
                    mode=m.mode,
                    uid=m.uid,
                    gid=m.gid,
                )
            )
        elif isinstance(m, BindMountSpec):
            out.append(_bind(rt, m, inputs, stack))
    return out


def _bind(
    rt: Runtime, m: BindMountSpec, inputs: Sequence[FsState], stack: contextlib.ExitStack
) -> RunMount:
    from bale.builder import executor as ex

    if m.input is not None:
        root = stack.enter_context(rt.rootfs.view(inputs[m.input]))
        # Inside the stage's filesystem, links resolved as the stage would see it.
        source = resolve(root, m.source or "/", follow_final=True)
        return ex.BindMount(target=m.target, source=source, readonly=m.readonly)
    # A local context: links cannot lead out of it, and what .dockerignore leaves out is
    # neither reachable by name nor visible inside a mounted directory.
    context = rt.env.context(m.context)
    rel = context.resolve(m.source or ".")
    host = context.host(rel)
    hide = tuple(context.hidden_below(rel)) if os.path.isdir(host) else ()
    return ex.BindMount(target=m.target, source=host, readonly=m.readonly, hide=hide)


def _error(v: Vertex, message: str, hint: str) -> StepError:
    return StepError(
        message,
        vertex=v.digest,
        source=v.location.source if v.location else None,
        lines=v.location.lines if v.location else (),
        hint=hint,
    )
