"""`bale bake` builds: every target and platform in one graph (a shared stage runs once),
`target:` contexts, `--set` overrides, compose files, and results that are all or nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bakehelp import bale, images, started

from support import busybox_rootfs_tar, require_root, start_registry

pytestmark = [pytest.mark.root, pytest.mark.slow]

TWO = ["linux/amd64", "linux/arm64"]

DOCKERFILE = """\
FROM base:1 AS shared
ARG GREETING
RUN echo "$GREETING from $(uname -m)" > /shared.txt
FROM shared AS app
ARG X=0
COPY app.txt /app.txt
RUN echo "X=$X" > /x.txt
FROM shared AS worker
RUN echo worker > /worker.txt
"""

FLAVOUR = """\
FROM app
ARG FLAVOUR
RUN echo "$FLAVOUR on $(cat /shared.txt)" > /flavour.txt
"""

# A group of three targets with inherits, a variable the environment overrides, a function,
# a matrix over two values and a `target:` context.
BAKE = """\
variable "TAG" { default = "dev" }
function "tag" {
  params = [name]
  result = "${name}:${TAG}"
}
group "default" { targets = ["app", "worker", "flavour"] }
target "_common" {
  platforms = ["linux/amd64", "linux/arm64"]
  args = { GREETING = "hello" }
}
target "app" {
  inherits = ["_common"]
  target = "app"
  tags = [tag("app")]
}
target "worker" {
  inherits = ["_common"]
  target = "worker"
  tags = [tag("worker")]
}
target "flavour" {
  name = "flavour-${f}"
  matrix = { f = ["a", "b"] }
  inherits = ["_common"]
  dockerfile = "Dockerfile.flavour"
  contexts = { app = "target:app" }
  args = { FLAVOUR = f }
  tags = [tag("flavour-${f}")]
}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bale root with base:1 for amd64 and arm64, a project directory with the bake file)."""
    require_root()
    tmp = tmp_path_factory.mktemp("bake")
    root = tmp / "root"
    for platform in TWO:
        bale(
            root,
            "import",
            "--platform",
            platform,
            str(busybox_rootfs_tar(tmp, platform)),
            "base:1",
            cwd=tmp,
        )
    proj = tmp / "proj"
    proj.mkdir()
    (proj / "Dockerfile").write_text(DOCKERFILE)
    (proj / "Dockerfile.flavour").write_text(FLAVOUR)
    (proj / "app.txt").write_text("app\n")
    (proj / "docker-bake.hcl").write_text(BAKE)
    return root, proj


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield server.host
    finally:
        server.stop()


def test_bake_builds_every_target_for_two_platforms_in_one_graph(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    root, proj = project
    meta = tmp_path / "meta.json"
    proc = bale(
        root, "bake", "--progress", "rawjson", "--metadata-file", str(meta),
        cwd=proj, env={"TAG": "v2"},
    )  # fmt: skip
    built = images(root, proj)
    for name in ("app", "worker", "flavour-a", "flavour-b"):
        assert built.get(f"{name}:v2") == TWO, (name, built)
    # The shared stage's RUN is needed by all four images on each platform: it runs once
    # per platform, under one vertex.
    shared = [(d, n) for d, n in started(proc.stderr) if 'RUN echo "$GREETING' in n]
    assert len(shared) == 2 and len({d for d, _ in shared}) == 2, shared
    doc = json.loads(meta.read_text())
    assert sorted(doc) == ["app", "flavour-a", "flavour-b", "worker"]
    assert doc["flavour-a"]["image.name"] == "flavour-a:v2"
    assert doc["app"]["containerimage.digest"].startswith("sha256:")
    # One history record per target, each with the steps its images depend on.
    records = [
        json.loads(line)
        for line in bale(root, "history", "ls", "--format", "json", cwd=proj).stdout.splitlines()
    ]
    names = sorted(r["name"] for r in records)
    assert names == [f"proj (bake {t})" for t in ("app", "flavour-a", "flavour-b", "worker")]
    steps = {r["name"]: r["total_steps"] for r in records}
    assert steps["proj (bake worker)"] < steps["proj (bake app)"], records


def test_set_overrides_and_target_context_reach_the_image(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    root, proj = project
    app, flavour = tmp_path / "app", tmp_path / "flavour"
    bale(
        root, "bake", "--progress", "plain",
        "--set", "*.platform=linux/arm64", "--set", "app.args.X=1",
        "--set", f"app.output=type=local,dest={app}",
        "--set", f"flavour-a.output=type=local,dest={flavour}",
        "app", "flavour-a", cwd=proj,
    )  # fmt: skip
    assert (app / "x.txt").read_text() == "X=1\n"
    assert (app / "shared.txt").read_text() == "hello from aarch64\n"
    # flavour-a is built FROM the app target's result (with its X=1).
    assert (flavour / "flavour.txt").read_text() == "a on hello from aarch64\n"
    assert (flavour / "x.txt").read_text() == "X=1\n"


def test_one_failing_target_tags_and_pushes_nothing(
    project: tuple[Path, Path], registry: str
) -> None:
    root, proj = project
    (proj / "fails.hcl").write_text(
        f"""\
group "default" {{ targets = ["ok", "bad"] }}
target "ok" {{
  target = "worker"
  tags = ["{registry}/ok:1"]
  platforms = ["linux/amd64", "linux/arm64"]
}}
target "bad" {{
  dockerfile-inline = "FROM base:1\\nRUN echo fine\\nRUN exit 3\\n"
  tags = ["{registry}/bad:1"]
}}
"""
    )
    before = images(root, proj)
    proc = bale(root, "bake", "-f", "fails.hcl", "--push", "--progress", "plain", cwd=proj,
                check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ERROR: target bad: " in proc.stderr and "exit code: 3" in proc.stderr
    assert "Dockerfile:3" in proc.stderr and ">>> RUN exit 3" in proc.stderr
    assert images(root, proj) == before
    assert _tags(registry, "ok") == [] and _tags(registry, "bad") == []
    # Alone, the good target pushes: the push above was held back, not broken.
    bale(root, "bake", "-f", "fails.hcl", "--push", "--progress", "plain", "ok", cwd=proj)
    assert _tags(registry, "ok") == ["1"]


def _tags(registry: str, repo: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/{repo}/tags/list") as resp:
            return list(json.loads(resp.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return []


def test_steps_reading_different_contexts_stay_apart(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    """Two targets whose Dockerfiles are alike but whose contexts differ: each COPY reads its
    own context; a step built alone before is a cache hit inside the bake (the cache key
    does not depend on which other targets share the graph)."""
    root, _proj = project
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.txt").write_text(f"{name}\n")
        (tmp_path / name / "Dockerfile").write_text("FROM base:1\nCOPY f.txt /f.txt\n")
    (tmp_path / "docker-bake.hcl").write_text(
        "".join(
            f'target "{n}" {{\n  context = "{n}"\n  platforms = ["linux/amd64"]\n'
            f'  output = ["type=local,dest=out-{n}"]\n}}\n'
            for n in ("one", "two")
        )
    )
    bale(root, "bake", "--progress", "plain", "one", cwd=tmp_path)
    proc = bale(root, "bake", "--progress", "rawjson", "one", "two", cwd=tmp_path)
    assert (tmp_path / "out-one" / "f.txt").read_text() == "one\n"
    assert (tmp_path / "out-two" / "f.txt").read_text() == "two\n"
    copies = [n for _, n in started(proc.stderr) if "COPY f.txt" in n]
    assert copies == ["[two stage-0 2/2] COPY f.txt /f.txt"], copies


def test_compose_file_builds_each_service(project: tuple[Path, Path], tmp_path: Path) -> None:
    root, proj = project
    (proj / "compose.yaml").write_text(
        "services:\n"
        "  web:\n    build: .\n    image: web:1\n"
        "  jobs:\n    build:\n      context: .\n      target: worker\n    image: jobs:1\n"
    )
    bale(root, "bake", "-f", "compose.yaml", "--progress", "plain", cwd=proj)
    built = images(root, proj)
    assert "web:1" in built and "jobs:1" in built


def test_call_targets_answers_per_target(project: tuple[Path, Path]) -> None:
    root, proj = project
    proc = bale(root, "bake", "--call", "targets", "app", "worker", cwd=proj)
    assert proc.stdout.startswith("app\n\nTARGET")
    assert "\nworker\n\nTARGET" in proc.stdout
    assert "shared" in proc.stdout
