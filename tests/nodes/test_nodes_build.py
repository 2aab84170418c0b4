"""Builds on a builder of two real sshd nodes (tests/sshnodes.py): each platform on its own
node, one index, outputs written once by the coordinator, faults named, caches kept."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from nodehelp import PLATFORMS, Cluster

from sshnodes import BALE

pytestmark = [pytest.mark.root, pytest.mark.slow]

ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def _context(tmp: Path, base: str, extra: str = "") -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY f /f\nRUN uname -m > /arch\n{extra}")
    (ctx / "f").write_text("hello\n")
    (ctx / "ignored").write_text("not sent\n")
    (ctx / ".dockerignore").write_text("ignored\n")
    return ctx


def _statuses(stderr: str) -> list[dict[str, Any]]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _ran(stderr: str) -> dict[str, bool]:
    """Step name -> whether it executed (completed and not cached)."""
    out: dict[str, bool] = {}
    for status in _statuses(stderr):
        for v in status.get("vertexes", []):
            if "completed" in v:
                out[v["name"]] = not v.get("cached", False)
    return out


def _warnings(stderr: str) -> list[str]:
    return [
        base64.b64decode(w["short"]).decode()
        for s in _statuses(stderr)
        for w in s.get("warnings", [])
    ]


def _build(c: Cluster, ctx: Path, *args: str, check: bool = True) -> Any:
    return c.bale(
        "build",
        "--builder",
        "two",
        "--platform",
        ",".join(PLATFORMS),
        "--progress",
        "rawjson",
        *args,
        str(ctx),
        check=check,
    )


def test_push_gives_one_index_each_platform_built_on_its_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    ctx = _context(tmp_path, cluster.base)
    ref = f"{cluster.registry}/app:push"
    root = tmp_path / "fresh"  # a coordinator that has never held a layer of this image
    root.mkdir()
    shutil.copy(cluster.root / "builders.json", root / "builders.json")
    proc = cluster.bale(
        "build",
        "--builder",
        "two",
        "--platform",
        ",".join(PLATFORMS),
        "--progress",
        "rawjson",
        "--push",
        "-t",
        ref,
        str(ctx),
        root=root,
    )
    # The nodes pushed their layers by digest: none came through here (busybox is ~1 MB).
    big = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size > 256 << 10]
    assert big == [], big
    ran = _ran(proc.stderr)
    assert any(n.startswith("[amd] [linux/amd64") and "RUN uname" in n for n in ran), ran
    assert any(n.startswith("[arm] [linux/arm64") and "RUN uname" in n for n in ran), ran
    assert not any(
        n.startswith("[amd] [linux/arm64") or n.startswith("[arm] [linux/amd64") for n in ran
    )
    raw = json.loads(cluster.bale("imagetools", "inspect", "--raw", ref).stdout)
    platforms = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in raw["manifests"]
        if m.get("platform", {}).get("os") != "unknown"
    )
    assert platforms == sorted(PLATFORMS)
    prov = json.loads(
        cluster.bale("imagetools", "inspect", ref, "--format", "{{json .Provenance}}").stdout
    )
    text = {p: json.dumps(v) for p, v in prov.items()}
    assert '"node": "amd"' in text["linux/amd64"] and '"node": "arm"' in text["linux/arm64"]


def _layer_files(blobs: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        data = (blobs / layer["digest"].replace(":", "/")).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for info in tar:
                if info.isfile():
                    f = tar.extractfile(info)
                    assert f is not None
                    files[info.name.lstrip("./")] = f.read()
    return files


def test_oci_output_and_load(cluster: Cluster, containerd: list[str], tmp_path: Path) -> None:
    ctx = _context(tmp_path, cluster.base)
    out = tmp_path / "out.tar"
    _build(cluster, ctx, "-o", f"type=oci,dest={out}", "-t", "nodes/app:oci")
    layout = tmp_path / "layout"
    with tarfile.open(out) as tar:
        tar.extractall(layout, filter="data")
    blobs = layout / "blobs"
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    index = json.loads((blobs / top["digest"].replace(":", "/")).read_text())
    seen = {}
    for m in index["manifests"]:
        platform = f"{m['platform']['os']}/{m['platform']['architecture']}"
        if platform in ARCH:
            manifest = json.loads((blobs / m["digest"].replace(":", "/")).read_text())
            files = _layer_files(blobs, manifest)
            seen[platform] = files["arch"].decode().strip()
            assert "ignored" not in files  # .dockerignore held: the file never left
    assert seen == ARCH
    subprocess.run(
        [*containerd, "images", "import", "--all-platforms", str(out)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    for i, (platform, arch) in enumerate(ARCH.items()):
        run = subprocess.run(
            [
                *containerd,
                "run",
                "--rm",
                "--platform",
                platform,
                "docker.io/nodes/app:oci",
                f"bale-nodes-test-{os.getpid()}-{i}",
                "/bin/busybox",
                "uname",
                "-m",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0 and run.stdout.strip() == arch, run.stderr

    _build(cluster, ctx, "--load", "-t", "app:loaded")
    images = cluster.bale("images").stdout
    assert "app" in images and "loaded" in images


def test_a_node_dying_mid_build_fails_the_build_and_tags_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    ctx = _context(tmp_path, cluster.base)
    _build(cluster, ctx)  # warm both nodes' caches with this context's steps
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "Dockerfile").write_text(
        f"FROM {cluster.base}\nARG NONCE\nRUN echo $NONCE && sleep 30\n"
    )
    ref = f"{cluster.registry}/app:killed"
    with cluster.popen(
        "build",
        "--builder",
        "two",
        "--platform",
        ",".join(PLATFORMS),
        "--progress",
        "plain",
        "--build-arg",
        f"NONCE={uuid.uuid4()}",
        "--push",
        "-t",
        ref,
        "-t",
        "killed:1",
        str(slow),
    ) as proc:
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 120
        for line in proc.stderr:
            seen.append(line)
            if "[arm]" in line and "sleep 30" in line:
                break  # the arm node is running the step
            assert time.monotonic() < deadline, "".join(seen)
        arm = cluster.nodes.nodes["arm"]
        arm.kill()
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert code != 0
    assert "node 'arm'" in rest, "".join(seen) + rest
    assert "killed" not in cluster.bale("images").stdout
    missing = cluster.bale("imagetools", "inspect", ref, check=False)
    assert missing.returncode != 0

    # Restarted, the node has kept its store: the warm build executes no step there.
    arm.start()
    again = _build(cluster, ctx)
    ran = _ran(again.stderr)
    # (FROM only resolves the base, which the node's store holds: it is never "cached".)
    arm_steps = {n: r for n, r in ran.items() if n.startswith("[arm]") and "] FROM " not in n}
    assert arm_steps and not any(arm_steps.values()), arm_steps
    assert any("context cached on the node" in w for w in _warnings(again.stderr))


def test_strict_platforms_refuses_before_any_work(cluster: Cluster, tmp_path: Path) -> None:
    ctx = _context(tmp_path, cluster.base)
    # Without strict mode, a platform no node declares is built emulated, and said so.
    amd = cluster.nodes.nodes["amd"]
    cluster.bale(
        "builder",
        "create",
        "--name",
        "solo",
        "--node",
        "amd",
        "--platform",
        "linux/amd64",
        "--driver-opt",
        f"bale={BALE},root={amd.root}",
        amd.endpoint,
    )
    proc = cluster.bale(
        "build", "--builder", "solo", "--platform", "linux/arm64", "--progress", "rawjson", str(ctx)
    )
    assert any(
        "no node serves linux/arm64 natively" in w and "'amd'" in w for w in _warnings(proc.stderr)
    ), proc.stderr
    assert any(n.startswith("[amd] [linux/arm64") for n in _ran(proc.stderr))
    proc = cluster.bale(
        "build",
        "--builder",
        "two",
        "--platform",
        "linux/amd64,linux/s390x",
        "--strict-platforms",
        "--progress",
        "plain",
        str(ctx),
        check=False,
    )
    assert proc.returncode == 1
    assert "linux/s390x" in proc.stderr and "--strict-platforms" in proc.stderr
    assert "building" not in proc.stderr  # no node was started
    # Nodes that declare their platforms are not even contacted: an unreachable one is
    # not what the refusal is about.
    from support import free_port

    cluster.bale(
        "builder",
        "create",
        "--name",
        "declared",
        "--node",
        "nowhere",
        "--platform",
        "linux/amd64",
        f"ssh://root@127.0.0.1:{free_port()}",
    )
    proc = cluster.bale(
        "build",
        "--builder",
        "declared",
        "--platform",
        "linux/s390x",
        "--strict-platforms",
        str(ctx),
        check=False,
    )
    assert proc.returncode == 1
    assert "--strict-platforms" in proc.stderr and "unreachable" not in proc.stderr


def test_unreachable_and_mismatched_nodes_are_named(cluster: Cluster, tmp_path: Path) -> None:
    from support import free_port

    ctx = _context(tmp_path, cluster.base)
    fake = tmp_path / "old-bale"
    fake.write_text('#!/bin/sh\necho \'{"bale": "0.0.1", "native": ["linux/amd64"]}\'\n')
    fake.chmod(0o755)
    amd = cluster.nodes.nodes["amd"]
    cluster.bale(
        "builder",
        "create",
        "--name",
        "old",
        "--node",
        "stale",
        "--driver-opt",
        f"bale={fake}",
        amd.endpoint,
    )
    proc = cluster.bale("build", "--builder", "old", str(ctx), check=False)
    assert proc.returncode == 1
    assert "node 'stale'" in proc.stderr and "0.0.1" in proc.stderr, proc.stderr

    cluster.bale(
        "builder",
        "create",
        "--name",
        "gone",
        "--node",
        "lost",
        f"ssh://root@127.0.0.1:{free_port()}",
    )
    proc = cluster.bale("build", "--builder", "gone", str(ctx), check=False)
    assert proc.returncode == 1
    assert "node 'lost'" in proc.stderr and "unreachable" in proc.stderr, proc.stderr
    listing = cluster.bale("builder", "ls").stdout
    assert "lost" in listing and "error" in listing
    amd_row = next(line for line in listing.splitlines() if "\\_ amd " in line)
    assert "running" in amd_row and "linux/amd64*" in amd_row and "(emulated)" in amd_row


def test_secrets_reach_the_node_and_nowhere_else(cluster: Cluster, tmp_path: Path) -> None:
    secret = f"s3cr3t-{uuid.uuid4()}"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    ctx = tmp_path / "secret-ctx"
    ctx.mkdir()
    # The step fails unless the node's build saw the secret (only its hash is in the file).
    (ctx / "Dockerfile").write_text(
        f"FROM {cluster.base}\n"
        "RUN --mount=type=secret,id=tok "
        f'test "$(sha256sum < /run/secrets/tok | cut -c1-64)" = {digest}\n'
    )
    src = tmp_path / "tok"
    src.write_text(secret)
    proc = _build(cluster, ctx, "--secret", f"id=tok,src={src}", "--no-cache")
    assert secret not in proc.stderr + proc.stdout
    for root in (cluster.root, *(n.root for n in cluster.nodes.nodes.values())):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 20:
                assert secret.encode() not in path.read_bytes(), path


def test_ctrl_c_stops_every_remote_build(cluster: Cluster, tmp_path: Path) -> None:
    from sshnodes import descendants

    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "Dockerfile").write_text(f"FROM {cluster.base}\nRUN echo {uuid.uuid4()} && sleep 60\n")
    with cluster.popen(
        "build",
        "--builder",
        "two",
        "--platform",
        ",".join(PLATFORMS),
        "--progress",
        "plain",
        "-t",
        "interrupted:1",
        str(slow),
    ) as proc:
        assert proc.stderr is not None
        running: set[str] = set()
        for line in proc.stderr:
            # `#N [node] [platform ...] RUN ...`: the step has started on that node
            if "sleep 60" in line and line.split()[1:2] in (["[amd]"], ["[arm]"]):
                running.add(line.split()[1].strip("[]"))
            if running == {"amd", "arm"}:
                break
        proc.send_signal(signal.SIGINT)
        proc.stderr.read()
        assert proc.wait(timeout=60) == 130
    deadline = time.monotonic() + 30
    while any(descendants(n.proc.pid) for n in cluster.nodes.nodes.values() if n.proc):
        assert time.monotonic() < deadline, "a node build outlived the interrupted build"
        time.sleep(0.2)
    assert "interrupted" not in cluster.bale("images").stdout


def test_a_local_node_builds_here_beside_a_remote_one(cluster: Cluster, tmp_path: Path) -> None:
    arm = cluster.nodes.nodes["arm"]
    root = tmp_path / "mixed-root"
    cluster.bale(
        "builder",
        "create",
        "--name",
        "mix",
        "--node",
        "here",
        "--platform",
        "linux/amd64",
        "--use",
        "local",
        root=root,
    )
    cluster.bale(
        "builder",
        "create",
        "--name",
        "mix",
        "--append",
        "--node",
        "arm",
        "--platform",
        "linux/arm64",
        "--driver-opt",
        f"bale={BALE},root={arm.root}",
        arm.endpoint,
        root=root,
    )
    out = tmp_path / "out"
    # The current builder (`use`) applies; the local node's own build does not fan out again.
    proc = cluster.bale(
        "build",
        "--platform",
        ",".join(PLATFORMS),
        "--progress",
        "rawjson",
        "-o",
        f"type=local,dest={out}",
        str(_context(tmp_path, cluster.base)),
        root=root,
        timeout=300,
    )
    ran = _ran(proc.stderr)
    assert any(n.startswith("[here] [linux/amd64") for n in ran), ran
    assert any(n.startswith("[arm] [linux/arm64") for n in ran), ran
    assert {p: (out / p.replace("/", "_") / "arch").read_text().strip() for p in ARCH} == ARCH


def test_a_node_lost_mid_build_is_retried_on_another_serving_its_platform(
    cluster: Cluster, tmp_path: Path
) -> None:
    arm, amd = cluster.nodes.nodes["arm"], cluster.nodes.nodes["amd"]
    for node in (arm, amd):  # both declare linux/arm64: arm first, so it gets the build
        first = [] if node is arm else ["--append"]
        cluster.bale(
            "builder",
            "create",
            "--name",
            "spare",
            *first,
            "--node",
            node.name,
            "--platform",
            "linux/arm64",
            "--driver-opt",
            f"bale={BALE},root={node.root}",
            node.endpoint,
        )
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "Dockerfile").write_text(f"FROM {cluster.base}\nRUN echo {uuid.uuid4()} && sleep 3\n")
    with cluster.popen(
        "build",
        "--builder",
        "spare",
        "--platform",
        "linux/arm64",
        "--progress",
        "plain",
        "-t",
        "retried:1",
        str(slow),
    ) as proc:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "[arm]" in line and "sleep 3" in line:
                break
        arm.kill()
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)
    arm.start()
    text = "".join(seen) + rest
    assert code == 0, text
    assert "node 'arm'" in text and "retrying on node 'amd'" in text
    assert any(line.split()[1:2] == ["[amd]"] and "sleep 3" in line for line in rest.splitlines())
    assert "retried" in cluster.bale("images").stdout


def test_ssh_agent_is_forwarded_to_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        ctx = tmp_path / "ssh-ctx"
        ctx.mkdir()
        # required=true: the step fails unless the node's build got an agent socket.
        (ctx / "Dockerfile").write_text(
            f"FROM {cluster.base}\n"
            f"RUN --mount=type=ssh,required=true echo {uuid.uuid4()} && test -S $SSH_AUTH_SOCK\n"
        )
        proc = _build(cluster, ctx, "--ssh", f"default={sock}")
        ran = _ran(proc.stderr)
        assert any(n.startswith("[arm]") and "mount=type=ssh" in n and r for n, r in ran.items())
        key = tmp_path / "key"
        key.write_text("not a socket")
        bad = _build(cluster, ctx, "--ssh", f"default={key}", check=False)
        assert bad.returncode == 1 and "only agent sockets" in bad.stderr
    finally:
        agent.terminate()
        agent.wait()


def test_a_named_context_directory_is_sent_to_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "data.txt").write_text("from a named context\n")
    (extra / "skip.txt").write_text("ignored\n")
    (extra / ".dockerignore").write_text("skip.txt\n")
    ctx = tmp_path / "named-ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {cluster.base}\nCOPY --from=extra / /extra/\n"
        "RUN test -f /extra/data.txt && test ! -e /extra/skip.txt\n"
    )
    out = tmp_path / "out"
    proc = _build(cluster, ctx, "--build-context", f"extra={extra}", "-o", f"type=local,dest={out}")
    assert (out / "linux_arm64" / "extra" / "data.txt").read_text() == "from a named context\n"
    assert not (out / "linux_amd64" / "extra" / "skip.txt").exists()
    again = _build(cluster, ctx, "--build-context", f"extra={extra}")
    # The nodes kept it: nothing but FROM (which only resolves the base) is not cached.
    assert not any(r for n, r in _ran(again.stderr).items() if "] FROM " not in n)
    assert proc.returncode == 0
