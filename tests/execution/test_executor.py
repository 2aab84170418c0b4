"""RUN steps for real: runc or unshare+chroot, native or emulated, isolated, with mounts."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from exechelp import MakeRootfs, bind, copy_into, mounts_under, processes_with, require_root

from bale.builder.executor import (
    BindMount,
    CacheMount,
    CollectingOutput,
    RunSpec,
    SandboxExecutor,
    SecretMount,
    SSHMount,
    TmpfsMount,
)
from bale.emulation import binfmt
from bale.emulation.modes import choose
from bale.errors import InvalidArgument, StepError, Unavailable
from bale.mounts import mounted
from bale.oci import Platform
from bale.store.layers import DiffOptions
from bale.store.layers.snapshot_diff import diff_active
from bale.store.snapshots import Snapshotter

pytestmark = pytest.mark.root

RUNTIMES = ["runc", "unshare"]


def sh(script: str, **kwargs: object) -> RunSpec:
    return RunSpec(argv=("/bin/sh", "-c", script), **kwargs)  # type: ignore[arg-type]


def run(executor: SandboxExecutor, spec: RunSpec, rootfs: Path) -> tuple[int, CollectingOutput]:
    progress = CollectingOutput()
    code = executor.run(spec, bind(rootfs), progress)
    return code, progress


@pytest.fixture(params=RUNTIMES)
def any_executor(request: pytest.FixtureRequest, tmp_path: Path) -> SandboxExecutor:
    require_root()
    return SandboxExecutor(tmp_path / f"executor-{request.param}", runtime=request.param)


@pytest.fixture
def binfmt_handler() -> Iterator[object]:
    """ensure(platform): make sure its handler is registered; put things back afterwards."""
    added: list[Platform] = []

    def ensure(platform: Platform) -> None:
        handler = binfmt.handler_for(platform)
        if handler is not None and handler.enabled:
            return
        try:
            binfmt.install(platform)
        except Exception as exc:
            pytest.skip(f"cannot install the binfmt handler for {platform}: {exc}")
        if handler is None:
            added.append(platform)

    yield ensure
    for platform in added:
        binfmt.uninstall(platform)


# -- platforms ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("platform,machine", [("linux/amd64", "x86_64"), ("linux/386", "i686")])
def test_native_platforms(
    make_rootfs: MakeRootfs, tmp_path: Path, runtime: str, platform: str, machine: str
) -> None:
    require_root()
    executor = SandboxExecutor(tmp_path / "ex", runtime=runtime)  # type: ignore[arg-type]
    rootfs = make_rootfs(platform)
    spec = RunSpec(argv=("uname", "-m"), platform=Platform.parse(platform))
    code, progress = run(executor, spec, rootfs)
    assert code == 0, progress.text()
    assert progress.text(1) == machine
    assert progress.statuses == []  # nothing emulated


EMULATED = [
    ("linux/arm64", "aarch64"),
    ("linux/arm/v7", "armv7l"),
    ("linux/s390x", "s390x"),
    ("linux/ppc64le", "ppc64le"),
]


@pytest.mark.parametrize("platform,machine", EMULATED)
def test_emulated_through_binfmt(
    make_rootfs: MakeRootfs,
    any_executor: SandboxExecutor,
    binfmt_handler: object,
    platform: str,
    machine: str,
) -> None:
    executor = any_executor
    rootfs = make_rootfs(platform)
    target = Platform.parse(platform)
    assert callable(binfmt_handler)
    binfmt_handler(target)
    spec = RunSpec(argv=("uname", "-m"), platform=target)
    assert executor.emulation_for(spec).mode == "binfmt"
    code, progress = run(executor, spec, rootfs)
    assert code == 0, progress.text()
    assert progress.text(1) == machine
    assert progress.statuses == [f"[{platform} emulated]"]


@pytest.mark.parametrize("platform,machine", EMULATED)
def test_emulated_through_proot(
    make_rootfs: MakeRootfs, executor: SandboxExecutor, platform: str, machine: str
) -> None:
    rootfs = make_rootfs(platform)
    spec = RunSpec(argv=("/bin/uname", "-m"), platform=Platform.parse(platform), emulation="proot")
    code, progress = run(executor, spec, rootfs)
    assert code == 0, progress.text()
    assert progress.text(1) == machine
    assert progress.statuses == [f"[{platform} emulated via proot]"]


def test_disabled_handler_means_proot(binfmt_handler: object) -> None:
    """With the arm64 handler off, the automatic choice is proot (handler back on at once)."""
    require_root()
    arm64 = Platform.parse("linux/arm64")
    assert callable(binfmt_handler)
    binfmt_handler(arm64)
    assert choose(arm64).mode == "binfmt"
    binfmt.set_enabled(arm64, False)
    try:
        chosen = choose(arm64)
    finally:
        binfmt.set_enabled(arm64, True)
    assert chosen.mode == "proot"
    assert chosen.interpreter.endswith("qemu-aarch64-static")
    assert chosen.label == "[linux/arm64 emulated via proot]"


def test_unknown_platform_is_a_clear_error(
    make_rootfs: MakeRootfs, executor: SandboxExecutor
) -> None:
    rootfs = make_rootfs("linux/amd64")
    spec = RunSpec(argv=("true",), platform=Platform.parse("linux/sparc64"))
    with pytest.raises(Unavailable) as info:
        executor.run(spec, bind(rootfs), CollectingOutput())
    assert "linux/sparc64" in str(info.value)
    assert "qemu-user-static" in info.value.hint
    assert "bale emulation install" in info.value.hint
    with pytest.raises(Unavailable, match="not native"):
        choose(Platform.parse("linux/arm64"), "native")


# -- isolation ---------------------------------------------------------------------------


def test_cannot_read_host_files(
    make_rootfs: MakeRootfs, any_executor: SandboxExecutor, tmp_path: Path
) -> None:
    secret = tmp_path / "host-only.txt"
    secret.write_text("HOST-CONTENT-4711")
    rootfs = make_rootfs("linux/amd64")
    script = f"cat {secret}; cat /etc/hostname; ls -a /; cat ../../../../{secret}"
    code, progress = run(any_executor, sh(script), rootfs)
    assert "HOST-CONTENT-4711" not in progress.text()
    assert code != 0


def test_sees_only_its_own_processes(
    make_rootfs: MakeRootfs, any_executor: SandboxExecutor
) -> None:
    rootfs = make_rootfs("linux/amd64")
    script = "ls /proc | grep -E '^[0-9]+$'; cat /proc/1/cmdline; echo"
    code, progress = run(any_executor, sh(script), rootfs)
    assert code == 0, progress.text()
    out = progress.text(1).splitlines()
    pids = [int(line) for line in out if line.isdigit()]
    assert 1 in pids and len(pids) <= 4, out
    assert "sh" in out[-1]
    host_pids = {int(p) for p in os.listdir("/proc") if p.isdigit()}
    assert len(host_pids) > len(pids)


def test_network_none_has_only_loopback(
    make_rootfs: MakeRootfs, any_executor: SandboxExecutor
) -> None:
    rootfs = make_rootfs("linux/amd64")

    def interfaces(text: str) -> set[str]:
        return {line.split(":")[0].strip() for line in text.splitlines() if ":" in line}

    code, progress = run(any_executor, sh("cat /proc/net/dev", network="none"), rootfs)
    assert code == 0, progress.text()
    assert interfaces(progress.text(1)) == {"lo"}
    before = interfaces(Path("/proc/net/dev").read_text())
    code, progress = run(any_executor, sh("cat /proc/net/dev"), rootfs)
    after = interfaces(Path("/proc/net/dev").read_text())
    seen = interfaces(progress.text(1))  # the host's: other tests may add or drop links
    assert before & after <= seen <= before | after
    assert len(seen) > 1 or before == {"lo"}


def test_hostname_hosts_and_env(make_rootfs: MakeRootfs, any_executor: SandboxExecutor) -> None:
    rootfs = make_rootfs("linux/amd64")
    spec = sh(
        "hostname; grep -c buildkitsandbox /etc/hosts; echo $FOO; echo $PATH", env=("FOO=bar baz",)
    )
    code, progress = run(any_executor, spec, rootfs)
    assert code == 0, progress.text()
    lines = progress.text(1).splitlines()
    assert lines[:3] == ["buildkitsandbox", "1", "bar baz"]
    assert "/usr/bin" in lines[3]
    # Generated files and mount points do not stay in the rootfs.
    assert sorted(os.listdir(rootfs)) == ["bin"]


def test_user_and_workdir(make_rootfs: MakeRootfs, any_executor: SandboxExecutor) -> None:
    rootfs = make_rootfs("linux/amd64")
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (rootfs / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    spec = sh("id -u; id -g; id -G; pwd", user="app", cwd="/work/dir")
    code, progress = run(any_executor, spec, rootfs)
    assert code == 0, progress.text()
    assert progress.text(1).splitlines() == ["1000", "1000", "1000 2000", "/work/dir"]
    assert (rootfs / "work" / "dir").is_dir()  # WORKDIR is created and kept
    code, progress = run(any_executor, sh("id -u; id -g", user="1234:55"), rootfs)
    assert progress.text(1).splitlines() == ["1234", "55"]
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        run(any_executor, sh("true", user="nobody"), rootfs)


# -- mounts ------------------------------------------------------------------------------


def test_secret_is_readable_and_never_in_the_layer(
    make_rootfs: MakeRootfs, tmp_path: Path, snapshotter: Snapshotter
) -> None:
    executor = SandboxExecutor(tmp_path / "ex")
    base = make_rootfs("linux/amd64")
    active = snapshotter.prepare("step")
    with mounted(active.mounts, snapshotter.root / "mnt") as root:
        copy_into(base, Path(root))
    snapshotter.commit("base", "step")
    active = snapshotter.prepare("run", "base")
    value = b"S3CR3T-VALUE-9876"
    spec = sh(
        "cat /run/secrets/token; echo; cat /run/secrets/token > /dev/null && echo done",
        mounts=(SecretMount("token", value), CacheMount("/var/cache/app", id="apt")),
    )
    progress = CollectingOutput()
    code = executor.run(spec, active.mounts, progress)
    assert code == 0, progress.text()
    assert progress.text(1).splitlines() == [value.decode(), "done"]
    sink = io.BytesIO()
    diff_active(snapshotter, "run", sink, DiffOptions(compression=""))
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        names = tar.getnames()
    assert not any("secrets" in n or n.startswith("run") for n in names), names
    assert value not in sink.getvalue()
    for dirpath, _, files in os.walk(executor.cache_root):
        for name in files:
            assert value not in Path(dirpath, name).read_bytes()
    snapshotter.remove("run")


def test_cache_mount_persists_between_builds(make_rootfs: MakeRootfs, tmp_path: Path) -> None:
    require_root()
    state = tmp_path / "state"
    first = make_rootfs("linux/amd64")
    spec = sh(
        "echo $((`cat /cache/n 2>/dev/null || echo 0` + 1)) > /cache/n; cat /cache/n",
        mounts=(CacheMount("/cache", id="counter", sharing="locked"),),
    )
    code, progress = run(SandboxExecutor(state), spec, first)
    assert (code, progress.text(1)) == (0, "1")
    # A later build: another executor on the same state, another rootfs.
    second = make_rootfs("linux/amd64")
    code, progress = run(SandboxExecutor(state), spec, second)
    assert (code, progress.text(1)) == (0, "2")
    assert not (second / "cache").exists()  # the mount point does not stay in the rootfs
    other = sh("ls /cache | wc -l", mounts=(CacheMount("/cache", id="other"),))
    assert run(SandboxExecutor(state), other, second)[1].text(1).strip() == "0"


def test_tmpfs_bind_and_ssh_mounts(
    make_rootfs: MakeRootfs, any_executor: SandboxExecutor, tmp_path: Path
) -> None:
    rootfs = make_rootfs("linux/amd64")
    context = tmp_path / "context"
    context.mkdir()
    (context / "input.txt").write_text("from context\n")
    agent = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(agent))
    try:
        spec = sh(
            "cat /ctx/input.txt; touch /ctx/new 2>/dev/null || echo read-only;"
            " echo scratch > /scratch/x && cat /scratch/x; test -S $SSH_AUTH_SOCK && echo agent",
            mounts=(BindMount("/ctx", str(context)), TmpfsMount("/scratch"), SSHMount(str(agent))),
        )
        code, progress = run(any_executor, spec, rootfs)
    finally:
        server.close()
    assert code == 0, progress.text()
    assert progress.text(1).splitlines() == ["from context", "read-only", "scratch", "agent"]
    assert not (context / "new").exists()
    assert sorted(os.listdir(rootfs)) == ["bin"]


# -- failure and interruption ------------------------------------------------------------


def test_failed_step_leaves_nothing(
    make_rootfs: MakeRootfs, any_executor: SandboxExecutor, snapshotter: Snapshotter, tmp_path: Path
) -> None:
    rootfs = make_rootfs("linux/amd64")
    snapshotter.prepare("seed")
    with mounted(snapshotter.mounts("seed"), snapshotter.root / "mnt") as root:
        copy_into(rootfs, Path(root))
    snapshotter.commit("base", "seed")
    spec = sh("echo partial > /file; sleep 31337 & exit 3")
    with pytest.raises(StepError) as info, snapshotter.prepared("step", "base") as active:
        any_executor.run_checked(spec, active.mounts, CollectingOutput())
    assert info.value.exit_code == 3
    assert [s.key for s in snapshotter.all()] == ["base"]
    assert mounts_under(tmp_path) == []
    assert processes_with("31337") == []


class InterruptingProgress(CollectingOutput):
    def output(self, fd: int, line: bytes) -> None:
        super().output(fd, line)
        if line == b"started":
            raise KeyboardInterrupt


@pytest.mark.parametrize("emulation", ["auto", "proot"])
def test_interrupted_step_leaves_nothing(
    make_rootfs: MakeRootfs,
    any_executor: SandboxExecutor,
    snapshotter: Snapshotter,
    tmp_path: Path,
    emulation: str,
) -> None:
    platform = "linux/arm64" if emulation == "proot" else "linux/amd64"
    rootfs = make_rootfs(platform)
    snapshotter.prepare("seed")
    with mounted(snapshotter.mounts("seed"), snapshotter.root / "mnt") as root:
        copy_into(rootfs, Path(root))
    snapshotter.commit("base", "seed")
    spec = sh(
        "sleep 31337 & echo started; sleep 31337",
        platform=Platform.parse(platform),
        emulation=emulation,
    )
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), snapshotter.prepared("step", "base") as active:
        any_executor.run(spec, active.mounts, InterruptingProgress())
    assert time.monotonic() - started < 60
    assert [s.key for s in snapshotter.all()] == ["base"]
    assert mounts_under(tmp_path) == []
    deadline = time.monotonic() + 5
    while processes_with("31337") and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL is delivered, reaping by the kernel may lag a moment
    assert processes_with("31337") == []


def test_concurrent_steps_share_one_executor(
    make_rootfs: MakeRootfs, executor: SandboxExecutor
) -> None:
    rootfs = [make_rootfs("linux/amd64") for _ in range(3)]
    results: dict[int, str] = {}

    def work(i: int) -> None:
        code, progress = run(executor, sh(f"echo step-{i}"), rootfs[i])
        results[i] = f"{code}:{progress.text(1)}"

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"0:step-{i}" for i in range(3)}


def test_read_write_bind_keeps_the_source_unchanged(
    make_rootfs: MakeRootfs, any_executor: SandboxExecutor, tmp_path: Path
) -> None:
    rootfs = make_rootfs("linux/amd64")
    stage = tmp_path / "other-stage"
    stage.mkdir()
    (stage / "data").write_text("original\n")
    spec = sh(
        "echo changed > /src/data; echo new > /src/extra; cat /src/data /src/extra",
        mounts=(BindMount("/src", str(stage), readonly=False),),
    )
    code, progress = run(any_executor, spec, rootfs)
    assert code == 0, progress.text()
    assert progress.text(1).splitlines() == ["changed", "new"]
    assert (stage / "data").read_text() == "original\n"
    assert sorted(os.listdir(stage)) == ["data"]
    assert mounts_under(tmp_path) == []


def test_private_cache_gets_its_own_instance_while_in_use(
    make_rootfs: MakeRootfs, tmp_path: Path
) -> None:
    require_root()
    import fcntl
    import hashlib

    state = tmp_path / "state"
    rootfs = make_rootfs("linux/amd64")
    fill = sh("echo first > /c/mark", mounts=(CacheMount("/c", id="p", sharing="private"),))
    assert run(SandboxExecutor(state), fill, rootfs)[0] == 0
    read = sh(
        "cat /c/mark 2>/dev/null || echo empty",
        mounts=(CacheMount("/c", id="p", sharing="private"),),
    )
    key = hashlib.sha256(b"p").hexdigest()[:32]
    lock = os.open(state / "cache" / f"{key}.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build holds the cache
        assert run(SandboxExecutor(state), read, rootfs)[1].text(1) == "empty"
    finally:
        os.close(lock)
    assert run(SandboxExecutor(state), read, rootfs)[1].text(1) == "first"


KILLED_BUILD = """
import sys
from bale.builder.executor import CollectingOutput, SandboxExecutor, RunSpec
from bale.store.snapshots import Snapshotter
from bale.mounts import mounted
import subprocess
snap = Snapshotter(sys.argv[1])
snap.prepare("seed")
with mounted(snap.mounts("seed"), snap.root / "mnt") as root:
    subprocess.run(["cp", "-a", sys.argv[3] + "/.", root], check=True)
snap.commit("base", "seed")
active = snap.prepare("step", "base")
class Progress(CollectingOutput):
    def output(self, fd, line):
        print(line.decode(), flush=True)
SandboxExecutor(sys.argv[2]).run(
    RunSpec(argv=("/bin/sh", "-c", "echo started; sleep 31338")), active.mounts, Progress())
"""


def test_killed_build_is_cleaned_up_by_the_next(make_rootfs: MakeRootfs, tmp_path: Path) -> None:
    require_root()
    import signal
    import subprocess
    import sys

    rootfs = make_rootfs("linux/amd64")
    snaps, state = tmp_path / "snaps", tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(snaps), str(state), str(rootfs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert processes_with("31338")  # the step outlived its build
    snapshotter = Snapshotter(snaps)
    assert snapshotter.prune_orphans() == ["step"]
    removed = SandboxExecutor(state).prune_orphans()
    assert any(r.startswith(f"bale-{child.pid}.") for r in removed)
    deadline = time.monotonic() + 5
    while processes_with("31338") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with("31338") == []
    assert [s.key for s in snapshotter.all()] == ["base"]
    assert mounts_under(tmp_path) == []
    leftovers = [
        d
        for d in Path("/dev/shm").glob("bale-step-*")
        if (d / "owner").exists() and f":{child.pid}:" in (d / "owner").read_text()
    ]
    assert leftovers == []
    assert not [m for m in mounts_under(Path("/dev/shm/bale-step")) if not os.path.exists(m)]
