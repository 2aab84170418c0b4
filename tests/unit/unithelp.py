"""Builds without root: the real builder, store and copy snapshotter, with a fake executor
whose RUN steps are a tiny script language acting on the step's rootfs directory.

Script commands (joined with `&&`, each `/bin/sh -c` text of a RUN):
  write PATH TEXT   a file with TEXT            mkdir PATH     a directory
  rm PATH           remove a file               exit N         stop with status N
  ln TARGET PATH    a symlink
  wait NAME         block until release(NAME)   hold NAME      block until the build cancels
  meet N            block until N steps meet (fails when they cannot run at once)
Anything else is recorded and does nothing.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import tarfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bale.builder import progress as pg
from bale.builder.build import BuildOptions, TargetBuild, run_build, run_builds
from bale.builder.executor.spec import RunSpec, StepOutput
from bale.builder.result import BuildResult
from bale.builder.state import LayerRef
from bale.frontends.dockerfile.parser import parse
from bale.mounts import Mount
from bale.oci.platform import Platform
from bale.store.local import Store
from bale.store.snapshots import Snapshotter


class Sink:
    """A progress sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[pg.Event] = []
        self._lock = threading.Lock()

    def emit(self, event: pg.Event) -> None:
        with self._lock:
            self.events.append(event)

    def kinds(self, name_part: str) -> list[str]:
        """The kinds of events of the steps whose name contains `name_part`."""
        return [e.kind for e in self.events if name_part in e.name]

    def of(self, kind: str) -> list[pg.Event]:
        return [e for e in self.events if e.kind == kind]


class FakeExecutor:
    """The Executor protocol, acting on the rootfs directory of a copy snapshot."""

    def __init__(self) -> None:
        self.specs: list[RunSpec] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self.cancelled = threading.Event()
        self._barriers: dict[int, threading.Barrier] = {}

    def release(self, name: str) -> None:
        self._event(name).set()

    def _event(self, name: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def commands(self) -> list[str]:
        return [s.argv[-1] for s in self.specs]

    def run(self, spec: RunSpec, rootfs_mounts: Sequence[Mount], output: StepOutput) -> int:
        assert len(rootfs_mounts) == 1 and rootfs_mounts[0].type == "bind", rootfs_mounts
        root = Path(rootfs_mounts[0].source)
        with self._lock:
            self.specs.append(spec)
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            env = dict(e.partition("=")[::2] for e in spec.env)
            return self._script(_expand(spec.argv[-1], env), root)
        finally:
            with self._lock:
                self.running -= 1

    def _script(self, text: str, root: Path) -> int:
        for command in text.split("&&"):
            words = shlex.split(command)
            if not words:
                continue
            verb, args = words[0], words[1:]
            if verb == "write":
                path = root / args[0].lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(" ".join(args[1:]))
            elif verb == "mkdir":
                (root / args[0].lstrip("/")).mkdir(parents=True, exist_ok=True)
            elif verb == "ln":
                os.symlink(args[0], root / args[1].lstrip("/"))
            elif verb == "rm":
                (root / args[0].lstrip("/")).unlink()
            elif verb == "exit":
                return int(args[0])
            elif verb == "wait":
                if not self._event(args[0]).wait(20):
                    raise AssertionError(f"nobody released {args[0]}")
            elif verb == "meet":
                with self._lock:
                    barrier = self._barriers.setdefault(
                        int(args[0]), threading.Barrier(int(args[0]))
                    )
                barrier.wait(10)  # BrokenBarrierError: they did not run at once
            elif verb == "hold":
                # Stands for a long process: the builder stops it when the build cancels.
                for _ in range(200):
                    if self.cancelled.wait(0.05):
                        return 137
                raise AssertionError("the build never cancelled a held step")
        return 0


def _expand(text: str, env: dict[str, str]) -> str:
    """$NAME and ${NAME} from the step's environment, as its shell would."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), text)


def stop_running_hook(executor: FakeExecutor) -> Any:
    """A replacement for bale.builder.executor.process.stop_running that ends held steps."""

    def stop() -> None:
        executor.cancelled.set()

    return stop


@dataclass
class Built:
    result: BuildResult
    sink: Sink
    executor: FakeExecutor

    def layers(self, platform: int = 0) -> tuple[LayerRef, ...]:
        return self.result.platforms[platform].layers


@dataclass
class Project:
    """A build context, a store and a fake executor in one temp directory."""

    tmp: Path
    files: Mapping[str, str | bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.context = self.tmp / "context"
        self.context.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.tmp / "root")
        # The copy driver: plain directories, no mounts; what a non-root user gets.
        Snapshotter(self.store.root / "snapshots", driver="copy").close()
        self.executor = FakeExecutor()
        self.last_sink = Sink()
        for name, body in self.files.items():
            self.write(name, body)

    def write(self, name: str, body: str | bytes, mode: int | None = None) -> Path:
        path = self.context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
        if mode is not None:
            path.chmod(mode)
        return path

    def options(
        self,
        dockerfile: str,
        platforms: Sequence[str] = ("linux/amd64",),
        **kw: Any,
    ) -> BuildOptions:
        files = {Platform.parse(p): parse(dockerfile) for p in platforms}
        return BuildOptions(context=self.context, files=files, **kw)

    def build(
        self,
        dockerfile: str,
        platforms: Sequence[str] = ("linux/amd64",),
        executor: FakeExecutor | None = None,
        **kw: Any,
    ) -> Built:
        sink = self.last_sink = Sink()
        ex = executor or self.executor
        ex.specs = []
        with self.store.lease() as lease:
            result = run_build(
                self.store, self.options(dockerfile, platforms, **kw), sink, lease, lambda: ex
            )
        return Built(result, sink, ex)

    def build_many(self, builds: Sequence[TargetBuild]) -> tuple[dict[str, BuildResult], Sink]:
        sink = Sink()
        with self.store.lease() as lease:
            results = run_builds(self.store, builds, sink, lease, lambda: self.executor)
        return results, sink

    def blob(self, layer: LayerRef) -> bytes:
        return self.store.content.read_bytes(layer.descriptor.digest)


@dataclass(frozen=True)
class Entry:
    name: str
    type: str  # "file", "dir", "symlink", "hardlink", "whiteout"
    mode: int
    uid: int
    gid: int
    data: bytes = b""
    link: str = ""


def layer_entries(project: Project, layer: LayerRef) -> dict[str, Entry]:
    """The entries of a layer's tar by path (no leading "./" or "/", no trailing "/")."""
    raw = project.blob(layer)
    out: dict[str, Entry] = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
        for info in tar:
            name = info.name.removeprefix("./").lstrip("/").rstrip("/")
            base = os.path.basename(name)
            if base.startswith(".wh."):
                kind = "whiteout"
            elif info.isdir():
                kind = "dir"
            elif info.issym():
                kind = "symlink"
            elif info.islnk():
                kind = "hardlink"
            else:
                kind = "file"
            data = b""
            if info.isfile():
                f = tar.extractfile(info)
                assert f is not None
                data = f.read()
            out[name] = Entry(
                name, kind, info.mode & 0o7777, info.uid, info.gid, data, info.linkname
            )
    return out


def files_of(project: Project, built: Built, platform: int = 0) -> dict[str, Entry]:
    """Every entry of the image's layers, later layers over earlier ones (whiteouts remove)."""
    merged: dict[str, Entry] = {}
    for layer in built.layers(platform):
        for name, entry in layer_entries(project, layer).items():
            if entry.type == "whiteout":
                gone = os.path.join(os.path.dirname(name), os.path.basename(name)[4:])
                merged.pop(gone.lstrip("/"), None)
                continue
            merged[name] = entry
    return merged
