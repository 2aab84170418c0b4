"""`bale bake` on builders of real sshd nodes: every target's platforms spread over the nodes,
one index per target, nothing tagged when any target fails."""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from nodehelp import PLATFORMS, Cluster, ran

from sshnodes import BALE

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _bake_file(tmp: Path, base: str, targets: dict[str, str]) -> Path:
    """A context whose Dockerfile names its target (so each target's steps are its own)
    and a bake file of `targets` (name -> HCL attributes)."""
    ctx = tmp / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(
        f"FROM {base}\nARG WHO\nRUN uname -m > /arch && echo $WHO > /who\n"
    )
    blocks = [
        f'target "{name}" {{\n  context = "{ctx}"\n  args = {{ WHO = "{name}-{uuid.uuid4()}" }}\n'
        f"{attrs}\n}}\n"
        for name, attrs in targets.items()
    ]
    group = ", ".join(f'"{n}"' for n in targets)
    path = tmp / "docker-bake.hcl"
    path.write_text(f'group "default" {{\n  targets = [{group}]\n}}\n' + "".join(blocks))
    return path


def _bake(
    c: Cluster, builder: str, file: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return c.bale(
        "bake", "--builder", builder, "-f", str(file), "--progress", "rawjson", check=check
    )


def _platforms(index: dict[str, object]) -> list[str]:
    manifests = index["manifests"]
    assert isinstance(manifests, list)
    return sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in manifests
        if m.get("platform", {}).get("os") != "unknown"
    )


def test_targets_and_platforms_are_spread_over_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    both = "platforms = [" + ", ".join(f'"{p}"' for p in PLATFORMS) + "]"
    pushed, mixed = f"{cluster.registry}/bake-a:1", f"{cluster.registry}/bake-b:1"
    oci = tmp_path / "b.tar"
    file = _bake_file(
        tmp_path,
        cluster.base,
        {
            "a": f'{both}\n  tags = ["{pushed}"]\n  output = ["type=registry"]',
            "b": f'{both}\n  tags = ["{mixed}"]\n'
            f'  output = ["type=registry", "type=oci,dest={oci}"]',
        },
    )
    proc = _bake(cluster, "two", file)
    steps = ran(proc.stderr)
    for target in ("a", "b"):
        for node, platform in (("amd", "linux/amd64"), ("arm", "linux/arm64")):
            prefix = f"[{node}] [{target}] [{platform} "
            assert any(n.startswith(prefix) and "RUN uname" in n for n in steps), (prefix, steps)
        for ref in (pushed, mixed):
            raw = json.loads(cluster.bale("imagetools", "inspect", "--raw", ref).stdout)
            assert _platforms(raw) == sorted(PLATFORMS)
    prov = json.loads(
        cluster.bale("imagetools", "inspect", pushed, "--format", "{{json .Provenance}}").stdout
    )
    text = {p: json.dumps(v) for p, v in prov.items()}
    assert '"node": "amd"' in text["linux/amd64"] and '"node": "arm"' in text["linux/arm64"]
    # The coordinator keeps one record per target, with the steps the nodes relayed.
    listed = cluster.bale("history", "ls", "--format", "json").stdout.splitlines()
    records = {json.loads(line)["name"]: json.loads(line) for line in listed}
    for target in ("a", "b"):
        (name,) = [n for n in records if n.endswith(f"(bake {target})")]
        assert records[name]["status"] == "Completed"
        ref = records[name]["ref"]
        record = json.loads(cluster.bale("history", "inspect", ref, "--format", "json").stdout)
        steps = [s["name"] for s in record["steps"]]
        for node in ("amd", "arm"):
            assert any(n.startswith(f"[{node}] [{target}] ") and "RUN uname" in n for n in steps)
        assert not any(f"] [{'b' if target == 'a' else 'a'}] " in n for n in steps), steps
    with tarfile.open(oci) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        top = json.loads(member.read())
        (desc,) = top["manifests"]
        blob = tar.extractfile("blobs/" + desc["digest"].replace(":", "/"))
        assert blob is not None
        assert _platforms(json.loads(blob.read())) == sorted(PLATFORMS)


def test_one_failing_target_tags_nothing(cluster: Cluster, tmp_path: Path) -> None:
    good = f"{cluster.registry}/bake-good:1"
    file = _bake_file(
        tmp_path,
        cluster.base,
        {
            "good": f'platforms = ["linux/amd64"]\n  tags = ["{good}", "bake-good:1"]\n'
            '  output = ["type=registry", "type=image"]',
            "bad": f'platforms = ["linux/arm64"]\n  tags = ["bake-bad:1"]\n'
            # (slower than `good`, so `good` has finished on its node when this fails)
            f'  dockerfile-inline = "FROM {cluster.base}\\nRUN sleep 3; exit 3\\n"',
        },
    )
    proc = _bake(cluster, "two", file, check=False)
    assert proc.returncode == 1, proc
    stderr = proc.stderr
    assert "ERROR: node 'arm' (ssh://arm) failed building target 'bad': " in stderr, stderr
    assert "exit code: 3" in stderr
    assert "Traceback" not in stderr
    images = cluster.bale("images").stdout
    assert "bake-good" not in images and "bake-bad" not in images
    assert cluster.bale("imagetools", "inspect", good, check=False).returncode != 0


def test_two_nodes_of_one_platform_build_one_target_each(cluster: Cluster, tmp_path: Path) -> None:
    for node in ("amd", "arm"):  # both declare linux/amd64
        n = cluster.nodes.nodes[node]
        cluster.bale(
            "builder",
            "create",
            "--name",
            "twoamd",
            *(["--append"] if node == "arm" else []),
            "--node",
            node,
            "--platform",
            "linux/amd64",
            "--driver-opt",
            f"bale={BALE},root={n.root}",
            n.endpoint,
        )
    one = 'platforms = ["linux/amd64"]\n  tags = ["bake-{}:1"]'
    file = _bake_file(tmp_path, cluster.base, {"x": one.format("x"), "y": one.format("y")})
    proc = _bake(cluster, "twoamd", file)
    steps = ran(proc.stderr)
    on = {
        target: {n.split("]")[0][1:] for n in steps if f"] [{target}] " in n and "RUN uname" in n}
        for target in ("x", "y")
    }
    assert on["x"] | on["y"] == {"amd", "arm"} and len(on["x"]) == len(on["y"]) == 1, on
    images = cluster.bale("images").stdout
    assert "bake-x" in images and "bake-y" in images


def test_target_contexts_are_refused_before_any_work(cluster: Cluster, tmp_path: Path) -> None:
    file = _bake_file(
        tmp_path,
        cluster.base,
        {"base": 'tags = ["linked-base:1"]', "app": 'contexts = { b = "target:base" }'},
    )
    proc = _bake(cluster, "two", file, check=False)
    assert proc.returncode == 1, proc
    assert "target app: contexts from other targets (target:) are not supported" in proc.stderr
    assert "builder 'two' of remote nodes" in proc.stderr and "Traceback" not in proc.stderr
    assert "[amd]" not in proc.stderr and "[arm]" not in proc.stderr
