"""Flags for RUN steps, each seen from inside a RUN: --add-host, --shm-size, --ulimit,
--allow (network.host, security.insecure), --cgroup-parent; a refused one fails before any
step."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildhelp import build, events

pytestmark = pytest.mark.root

ONE = ("linux/amd64",)
PROBE = (
    "cat /etc/hosts > /out/hosts; grep /dev/shm /proc/mounts > /out/shm; "
    "ulimit -n > /out/nofile; ulimit -Hn >> /out/nofile; grep CapEff /proc/self/status > /out/caps"
)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ctx = tmp_path_factory.mktemp("run-flags") / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM base:1\n"
        "RUN mkdir /out\n"
        f"RUN --network=host --security=insecure {PROBE}\n"
        "RUN grep CapEff /proc/self/status > /out/caps-sandbox\n"
    )
    return ctx


def _caps(text: str) -> int:
    return int(text.split()[1], 16)


@pytest.mark.root
def test_run_sees_the_flags(store_root: Path, context: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    build(
        store_root,
        context,
        "--add-host",
        "db.internal:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "v6=[fd00::1]",
        "--shm-size",
        "128m",
        "--ulimit",
        "nofile=512:512",
        "--allow",
        "network.host",
        "--allow",
        "security.insecure",
        "--cgroup-parent",
        "bale-builds",
        "-o",
        f"type=local,dest={dest}",
        platforms=ONE,
    )
    out = dest / "out"
    hosts = (out / "hosts").read_text().splitlines()
    assert "10.1.2.3\tdb.internal" in hosts
    assert "127.0.0.1\tgw" in hosts
    assert "fd00::1\tv6" in hosts
    assert "size=131072k" in (out / "shm").read_text()
    assert (out / "nofile").read_text().split() == ["512", "512"]
    # The insecure step has capabilities the sandboxed one lacks (CAP_SYS_ADMIN, bit 21).
    insecure, sandbox = _caps((out / "caps").read_text()), _caps((out / "caps-sandbox").read_text())
    assert insecure & (1 << 21) and not sandbox & (1 << 21)
    assert insecure & sandbox == sandbox


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs the network.host entitlement"),
        (("--allow", "network.host"), "needs the security.insecure entitlement"),
        (("--allow", "device"), "invalid entitlement 'device'"),
        (("--ulimit", "nofile=999999999:999999999"), "cannot raise the nofile limit"),
        (("--ulimit", "bogus=1"), "invalid --ulimit 'bogus=1'"),
        (("--ulimit", "nofile=10:5"), "soft limit above the hard limit"),
        (("--add-host", "nohost"), "invalid --add-host 'nohost'"),
        (("--add-host", "h:not-an-ip"), "invalid IP address 'not-an-ip'"),
        (("--shm-size", "lots"), "invalid --shm-size 'lots'"),
    ],
)
def test_refused_before_any_step(
    store_root: Path, context: Path, args: tuple[str, ...], message: str
) -> None:
    proc = build(store_root, context, *args, platforms=ONE, check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [
        e for e in events(proc.stderr) if e["kind"] in ("start", "done") and "RUN" in e["name"]
    ], "a RUN started before the flag was refused"
