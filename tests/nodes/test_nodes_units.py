"""The middle of node builds without nodes: planning, builder state, the context tar,
relaying a node's progress."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from bale.builder.progress import Event
from bale.cli.nodes import schedule
from bale.cli.nodes.context_tar import cached, pack, unpack
from bale.cli.nodes.sessions import relay
from bale.cli.nodes.state import BuilderState, Endpoint, Node
from bale.cli.nodes.transport import command
from bale.errors import BaleError, DigestMismatch, FailedPrecondition, InvalidArgument
from bale.oci.platform import Platform

AMD, ARM, S390X = (Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/s390x"))


def test_plan_is_native_first_and_balanced() -> None:
    nodes = [
        schedule.Capability("a", (AMD,), (ARM, S390X)),
        schedule.Capability("b", (ARM,), (S390X,)),
        schedule.Capability("c", (ARM,)),
    ]
    plan = schedule.plan([AMD, ARM], nodes)
    assert [(a.node, a.platforms) for a in plan.assignments] == [("a", (AMD,)), ("b", (ARM,))]
    assert plan.warnings == ()
    # Emulation goes to the least-loaded node able to, said in a warning.
    plan = schedule.plan([AMD, ARM, S390X], nodes)
    assigned = {a.node: a.platforms for a in plan.assignments}
    assert assigned == {"a": (AMD, S390X), "b": (ARM,)}  # c cannot emulate; a wins the tie
    emulated = [a for a in plan.assignments if a.emulated]
    assert len(emulated) == 1 and emulated[0].emulated == (S390X,)
    assert "linux/s390x" in plan.warnings[0] and emulated[0].node in plan.warnings[0]


def test_plan_counts_the_load_of_other_targets() -> None:
    nodes = [schedule.Capability("a", (AMD,)), schedule.Capability("b", (AMD,))]
    busy: dict[str, int] = {}
    on = []
    for _ in range(3):  # bake's targets, planned one after the other
        plan = schedule.plan([AMD], nodes, busy=busy)
        (only,) = plan.assignments
        busy[only.node] = busy.get(only.node, 0) + 1
        on.append(only.node)
    assert on == ["a", "b", "a"]


def test_strict_refuses_what_no_node_serves_natively() -> None:
    nodes = [schedule.Capability("a", (AMD,), (S390X,))]
    with pytest.raises(FailedPrecondition, match=r"linux/s390x.*--strict-platforms"):
        schedule.plan([AMD, S390X], nodes, strict=True)
    with pytest.raises(FailedPrecondition, match="natively or emulated"):
        schedule.plan([ARM], [schedule.Capability("a", (AMD,))])


def test_builder_state_round_trip(tmp_path: Path) -> None:
    state = BuilderState(tmp_path)
    node = Node("n1", Endpoint.parse("ssh://me@host:2222"), (ARM,), {"root": "/r"})
    state.create("farm", node, append=False)
    state.create("farm", Node("n2", Endpoint.parse("local")), append=True)
    state.use("farm")
    state.save()
    again = BuilderState(tmp_path)
    assert again.current == "farm"
    assert again.get("farm").nodes == (node, Node("n2", Endpoint("local")))
    with pytest.raises(InvalidArgument, match="--append"):
        again.create("farm", node, append=False)
    again.remove("farm")
    assert again.current == "default"
    with pytest.raises(BaleError, match="no builder"):
        again.get("farm")


def test_endpoints_and_the_ssh_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("tcp://host", "ssh://", "ssh://host:99999", "ssh://a b"):
        with pytest.raises(InvalidArgument):
            Endpoint.parse(bad)
    monkeypatch.setenv("BALE_SSH_CONFIG", "/cfg")
    node = Node("n", Endpoint.parse("ssh://u@h:22"), (), {"bale": "/opt/bale", "root": "/r t"})
    argv = command(node, "hello")
    assert argv[:3] == ["ssh", "-F", "/cfg"]
    assert argv[-3:] == ["h", "--", "/opt/bale --root '/r t' node hello"]
    assert argv[argv.index("-p") : argv.index("-p") + 2] == ["-p", "22"]


def test_context_tar_keeps_what_dockerignore_keeps(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "a").write_text("a")
    (ctx / "secret.key").write_text("x")
    (ctx / "link").symlink_to("sub/a")
    (ctx / ".dockerignore").write_text("*.key\n")
    digest, packed = pack(ctx, None)
    digest2, packed2 = pack(ctx, None)
    assert digest == digest2  # an unchanged context has one name
    data = packed.read()
    root = tmp_path / "node"
    out = unpack(root, digest, io.BytesIO(data + b"trailing"), len(data))
    assert (out / "sub" / "a").read_text() == "a" and (out / "link").is_symlink()
    assert not (out / "secret.key").exists()
    assert cached(root, digest) == out
    bad = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch):
        unpack(tmp_path / "other", bad, io.BytesIO(data), len(data))
    assert list((tmp_path / "other" / "node" / "contexts").iterdir()) == []
    packed.close()
    packed2.close()


class _Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def test_relay_names_the_node_in_every_step() -> None:
    sink = _Sink()
    names: dict[str, str] = {}
    at = "2026-01-01T00:00:00Z"
    relay(
        names,
        "arm",
        {"vertexes": [{"digest": "d1", "name": "[linux/arm64 1/2] RUN x", "started": at}]},
        sink,
    )
    log = base64.b64encode(b"out\n").decode()
    relay(names, "arm", {"logs": [{"vertex": "d1", "data": log, "stream": 1}]}, sink)
    relay(
        names,
        "arm",
        json.loads(
            json.dumps(
                {
                    "vertexes": [
                        {
                            "digest": "d1",
                            "name": "[linux/arm64 1/2] RUN x",
                            "started": at,
                            "completed": "2026-01-01T00:00:02Z",
                        }
                    ]
                }
            )
        ),
        sink,
    )
    kinds = [(e.kind, e.vertex, e.name, e.message) for e in sink.events]
    assert kinds == [
        ("start", "arm/d1", "[arm] [linux/arm64 1/2] RUN x", ""),
        ("log", "arm/d1", "[arm] [linux/arm64 1/2] RUN x", "out"),
        ("done", "arm/d1", "[arm] [linux/arm64 1/2] RUN x", ""),
    ]
    assert sink.events[-1].duration == 2.0
    # In bake: the target beside the node, and the platform a one-platform node build
    # leaves out of its names put back.
    relay(
        names,
        "amd",
        {"vertexes": [{"digest": "d1", "name": "[stage-0 1/2] RUN x"}]},
        sink,
        "app",
        "linux/amd64",
    )
    last = sink.events[-1]
    assert (last.vertex, last.name) == ("amd/app/d1", "[amd] [app] [linux/amd64 stage-0 1/2] RUN x")


def test_an_unreachable_node_is_skipped_only_when_others_serve_its_platforms() -> None:
    from bale.cli.nodes.sessions import plan_without
    from bale.cli.nodes.transport import Hello
    from bale.errors import Unavailable

    amd = Node("amd", Endpoint.parse("ssh://a"), (AMD,))
    arm = Node("arm", Endpoint.parse("ssh://b"), (ARM,))
    spare = Node("spare", Endpoint.parse("ssh://c"), (AMD,))
    hellos = {"amd": Hello("1", (AMD,), (ARM,))}
    down = {"arm": Unavailable("node 'arm' (ssh://b) is unreachable")}
    with pytest.raises(Unavailable, match="node 'arm'"):
        plan_without([AMD, ARM], [amd, arm], hellos, down, strict=False)
    with pytest.raises(Unavailable, match="node 'arm'"):
        plan_without([AMD, ARM], [amd, arm], hellos, down, strict=True)
    down = {"spare": Unavailable("node 'spare' (ssh://c) is unreachable")}
    plan = plan_without([AMD], [amd, spare], hellos, down, strict=False)
    assert [a.node for a in plan.assignments] == ["amd"]
    assert "node 'spare'" in plan.warnings[0] and "without it" in plan.warnings[0]
