"""The entry point: every command is reachable with only its own module imported, and the
registry package's lazy names all resolve."""

from __future__ import annotations

import subprocess
import sys

import bale.registry
from bale.cli.main import COMMAND_MODULES, COMMANDS, build_parser


def _commands(parser: object) -> set[str]:
    sub = parser._subparsers._group_actions[0]  # type: ignore[attr-defined]
    return set(sub.choices)


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    everything = build_parser()
    assert _commands(everything) == set(COMMANDS)
    assert set(COMMANDS.values()) == set(COMMAND_MODULES)
    for command in COMMANDS:
        # Parsing `bale COMMAND` imports one module; the command must be among what it adds.
        assert command in _commands(build_parser([command]))


def test_build_loads_only_what_a_cached_build_needs() -> None:
    # Start-up is most of a cached rebuild: the HTTP client, the template engine, the step
    # runtimes and the tar machinery load only when a build uses them.
    heavy = [
        "httpx",
        "jinja2",
        "bale.builder.executor",
        "bale.store.layers.apply",
        "bale.store.layers.diff",
        "bale.frontends.dockerfile.checks",
        "bale.exporters.sbom",
    ]
    code = (
        "import sys; from bale.cli.main import build_parser; build_parser(['build']); "
        "import bale.builder.build, bale.cli.build_run; "
        f"print(*[m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_registry_lazy_names_resolve() -> None:
    for name in bale.registry.__all__:
        assert getattr(bale.registry, name) is not None
    assert callable(bale.registry.pull)


def test_build_refuses_an_unknown_platform_before_anything(tmp_path: object) -> None:
    from pathlib import Path

    ctx = Path(str(tmp_path))
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY x /x\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bale",
            "--root",
            str(ctx / "root"),
            "build",
            "--platform",
            "linux/amd64,linux/bogus",
            str(ctx),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "unknown architecture 'bogus' in platform linux/bogus" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (ctx / "root").exists()  # refused before the store was even opened


def _bale(root: object, *args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bale", "--root", str(root), *args],
        input=stdin,
        capture_output=True,
        check=False,
    )


def test_build_dash_reads_a_dockerfile_or_a_context_tar_from_stdin(tmp_path: object) -> None:
    import io
    import json
    import tarfile
    from pathlib import Path

    root = Path(str(tmp_path)) / "root"
    proc = _bale(
        root,
        "build",
        "--progress",
        "quiet",
        "-t",
        "plain:1",
        "-",
        stdin=b"FROM scratch\nLABEL from=stdin\n",
    )
    assert proc.returncode == 0, proc.stderr
    inspect = _bale(root, "image", "inspect", "plain:1", stdin=b"")
    assert json.loads(inspect.stdout)[0]["Config"]["Labels"] == {"from": "stdin"}

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY f.txt /f.txt\n"), ("f.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = Path(str(tmp_path)) / "out"
    proc = _bale(
        root,
        "build",
        "--progress",
        "quiet",
        "-o",
        f"type=local,dest={out}",
        "-",
        stdin=buffer.getvalue(),
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "f.txt").read_bytes() == b"x"
