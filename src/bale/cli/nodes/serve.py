"""The node side, `bale node hello|build` (hidden): what a coordinator runs over SSH.

`hello` prints one JSON line: bale's version, the platforms this machine runs natively and
those it can emulate, and whether it holds a context (`--context DIGEST`).

`build` says hello on stderr, reads the header and context from stdin (see transport),
builds with this node's store and cache, and writes the result to stdout as an OCI layout
tar, its progress to stderr as rawjson. Secrets arrive in the header and live only in
this process's memory. EOF on stdin (the coordinator cancelled, or the connection
dropped) interrupts the build.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from bale import __version__
from bale.errors import InvalidArgument

NODE_ENV = "BALE_NODE_NAME"  # read by attest_flags: provenance names the node


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node")  # no help: not listed, it is for coordinators
    nsub = node.add_subparsers(dest="node_command", metavar="COMMAND")
    nsub.required = True
    hello = nsub.add_parser("hello")
    hello.add_argument("--context", default="")
    hello.set_defaults(func=cmd_hello)
    build = nsub.add_parser("build")
    build.set_defaults(func=cmd_build)


def _root(args: argparse.Namespace) -> Path:
    from bale.store.local import default_root

    return Path(args.root) if args.root else default_root()


def _platforms() -> tuple[list[str], list[str]]:
    from bale.emulation import modes, qemu
    from bale.errors import BaleError
    from bale.oci.platform import Platform

    native = [str(p) for p in modes.native_platforms()]
    emulated = []
    for name in qemu.DEFAULT_PLATFORMS:
        platform = Platform.parse(name)
        if str(platform) in native:
            continue
        try:
            modes.choose(platform)
        except BaleError:
            continue
        emulated.append(str(platform))
    return native, emulated


def cmd_hello(args: argparse.Namespace) -> int:
    from bale.cli.nodes.context_tar import cached

    native, emulated = _platforms()
    has = bool(args.context) and cached(_root(args), args.context) is not None
    print(json.dumps({"bale": __version__, "native": native, "emulated": emulated, "context": has}))
    return 0


def _read_header() -> dict[str, Any] | None:
    line = sys.stdin.buffer.readline(1 << 24)
    if not line:
        return None  # the coordinator has nothing for this node
    try:
        header = json.loads(line)
        if not isinstance(header, dict):
            raise ValueError
    except ValueError:
        raise InvalidArgument("bale node build: the header is not a JSON object") from None
    return header


def _watch_stdin(done: threading.Event) -> None:
    """EOF on stdin means the coordinator is gone or cancelled: stop as Ctrl-C would."""
    # The raw descriptor, not sys.stdin: a thread blocked in the buffered reader would
    # hold its lock through interpreter shutdown (a fatal error at exit).
    try:
        while os.read(0, 1 << 16):
            pass
    except OSError:
        pass
    if not done.is_set():
        os.kill(os.getpid(), signal.SIGINT)


def cmd_build(args: argparse.Namespace) -> int:
    from bale.cli.main import main
    from bale.cli.nodes.context_tar import cached, unpack

    root = _root(args)
    hello = _read_header()
    if hello is None:
        return 0
    digest = str(hello.get("context", ""))
    native, emulated = _platforms()
    has = bool(digest) and cached(root, digest) is not None
    named = {str(k): str(v) for k, v in dict(hello.get("named", {})).items()}
    has_named = {k: cached(root, v) is not None for k, v in named.items()}
    sys.stderr.write(
        json.dumps(
            {
                "bale-node-hello": {
                    "bale": __version__,
                    "native": native,
                    "emulated": emulated,
                    "context": has,
                    "named": has_named,
                }
            }
        )
        + "\n"
    )
    sys.stderr.flush()
    header = _read_header()
    if header is None:
        return 0
    if str(header.get("context", "")) != digest:
        raise InvalidArgument("bale node build: the header names another context")
    size = int(header.get("context_size", 0))
    context = unpack(root, digest, sys.stdin.buffer, size) if size else cached(root, digest)
    if context is None:
        raise InvalidArgument(f"context {digest} is neither sent nor cached on this node")
    contexts: list[str] = []
    for item in list(header.get("named", [])):  # named build contexts, in header order
        name, named_digest, named_size = str(item["name"]), str(item["digest"]), int(item["size"])
        where = (
            unpack(root, named_digest, sys.stdin.buffer, named_size)
            if named_size
            else cached(root, named_digest)
        )
        if where is None:
            raise InvalidArgument(f"build context {name} is neither sent nor cached here")
        contexts += ["--build-context", f"{name}={where}"]
    done = threading.Event()
    threading.Thread(target=_watch_stdin, args=(done,), daemon=True).start()
    workdir = Path(tempfile.mkdtemp(prefix="bale-node-"))
    try:
        dockerfile = workdir / Path(str(header.get("dockerfile_name") or "Dockerfile")).name
        dockerfile.write_text(str(header.get("dockerfile", "")))
        argv = [str(a) for a in header.get("argv", [])] + contexts
        for i, (secret_id, value) in enumerate(dict(header.get("secrets", {})).items()):
            var = f"BALE_NODE_SECRET_{i}"
            os.environ[var] = base64.b64decode(str(value)).decode("utf-8", "surrogateescape")
            argv += ["--secret", f"id={secret_id},env={var}"]
        for key, value in dict(header.get("env", {})).items():
            os.environ[str(key)] = str(value)
        os.environ[NODE_ENV] = str(header.get("node", ""))
        root_args = ["--root", str(root)]
        pushed = bool(header.get("push"))
        meta = workdir / "metadata.json"
        if pushed:
            argv += ["--metadata-file", str(meta)]
        # `--builder default`: this node's own in-process build, never its current builder
        # (a node whose root has a builder of nodes must not fan the build out again).
        build = ["build", "--builder", "default", *argv, "-f", str(dockerfile), str(context)]
        code = main([*root_args, *build])
        if code == 0 and pushed:
            _send_documents(root, meta)
    finally:
        done.set()
        shutil.rmtree(workdir, ignore_errors=True)
    return code


def _send_documents(root: Path, meta: Path) -> None:
    """After a push by digest: the image's documents (index, manifests, configs and the
    attestations' statements) as an OCI layout on stdout, without the layers, which the
    registry has already."""
    import tarfile

    from bale.oci import mediatype
    from bale.oci.descriptor import Descriptor
    from bale.oci.manifest import Index, Manifest, is_attestation
    from bale.store.local import Store

    target = Descriptor.from_json(json.loads(meta.read_text())["containerimage.descriptor"])
    store = Store(root)
    blobs: dict[str, Descriptor] = {}
    todo = [(target, False)]
    while todo:
        desc, statements = todo.pop()
        blobs[str(desc.digest)] = desc
        if mediatype.is_index(desc.media_type):
            todo += [
                (m, is_attestation(m)) for m in Index.parse(store.read_json_blob(desc)).manifests
            ]
        elif mediatype.is_manifest(desc.media_type):
            manifest = Manifest.parse(store.read_json_blob(desc))
            todo.append((manifest.config, False))
            if statements:
                todo += [(layer, False) for layer in manifest.layers]
    layout = {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": [target.to_json()]}
    out = sys.stdout.buffer
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for name, data in (
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", json.dumps(layout).encode()),
        ):
            _add(tar, name, data)
        for digest, desc in sorted(blobs.items()):
            with store.content.open(desc.digest, desc.size) as f:
                _add(tar, "blobs/" + digest.replace(":", "/"), f.read())
    out.flush()


def _add(tar: Any, name: str, data: bytes) -> None:
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
