"""A misbehaving registry (a fake HTTP server) never corrupts the store."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from reghelp import blob_digests, layer_tar, noise

from bale.errors import RegistryError
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Manifest
from bale.oci.platform import host_platform
from bale.registry import pull
from bale.registry.transport import Registries
from bale.store.check import check_store
from bale.store.local import Store


@dataclass
class FakeImage:
    manifest: bytes
    blobs: dict[str, bytes]
    layers: list[Descriptor]

    @property
    def digest(self) -> str:
        return str(Digest.of(self.manifest))


def fake_image() -> FakeImage:
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for i in range(2):
        blob, diff_id = layer_tar({f"f{i}": noise(f"bad/{i}", 200_000)})
        digest = Digest.of(blob)
        blobs[str(digest)] = blob
        layers.append(Descriptor(mediatype.OCI_LAYER_GZIP, digest, len(blob)))
        diff_ids.append(diff_id)
    config = ImageConfig(platform=host_platform(), diff_ids=tuple(diff_ids)).encode()
    config_desc = Descriptor(mediatype.OCI_CONFIG, Digest.of(config), len(config))
    blobs[str(config_desc.digest)] = config
    manifest = Manifest(config_desc, tuple(layers)).encode()
    return FakeImage(manifest, blobs, layers)


@dataclass
class FakeRegistry:
    """Repositories named after what goes wrong; `hits` counts requests per path."""

    image: FakeImage
    host: str = ""
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up (TLS probes, aborted downloads) are expected here


def start_fake(image: FakeImage) -> tuple[FakeRegistry, ThreadingHTTPServer]:
    state = FakeRegistry(image)
    bad_layer = str(image.layers[1].digest)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            with state.lock:
                state.hits[self.path] = state.hits.get(self.path, 0) + 1
                hits = state.hits[self.path]
            if self.path == "/v2/":
                return self.send(200, b"{}", "application/json")
            parts = self.path.split("/")
            scenario, kind, ref = parts[2], parts[4], parts[5]
            flaky = scenario == "flaky" and hits <= 2
            if flaky or scenario == "always500":
                status = 429 if hits == 1 and scenario == "flaky" else 500
                return self.send(
                    status,
                    b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}',
                    "application/json",
                    Retry_After="0",
                )
            if scenario == "htmlerror":
                page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
                return self.send(404, page, "text/html")
            if kind == "manifests":
                body = image.manifest
                ctype = mediatype.OCI_MANIFEST
                headers = {"Docker_Content_Digest": image.digest}
                if scenario == "ctype":
                    ctype = "text/plain"
                if scenario == "htmlpage":
                    body, ctype = b"<html><body>Sign in</body></html>", "text/html"
                if scenario == "manifestdigest":
                    headers["Docker_Content_Digest"] = "sha256:" + "0" * 64
                if scenario == "wrongmanifest" and ref.startswith("sha256:"):
                    body = body.replace(b'"schemaVersion":2', b'"schemaVersion": 2')
                return self.send(200, body, ctype, **headers)
            blob = image.blobs.get(ref)
            if blob is None:
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json")
            if ref == bad_layer and scenario == "wrongdigest":
                blob = bytes([blob[0] ^ 0xFF]) + blob[1:]
            if ref == bad_layer and scenario == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob[: len(blob) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            if ref == bad_layer and scenario == "short":
                blob = blob[:-100]
            return self.send(200, blob, "application/octet-stream")

    server = QuietServer(("127.0.0.1", 0), Handler)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRegistry]:
    state, server = start_fake(fake_image())
    yield state
    server.shutdown()
    server.server_close()


def test_500s_and_429_then_success_are_retried(
    fake: FakeRegistry, registries: Registries, store: Store
) -> None:
    result = pull(store, f"{fake.host}/flaky/app:1", registries=registries)
    assert str(result.target.digest) == fake.image.digest
    assert fake.hits["/v2/flaky/app/manifests/1"] == 3
    assert check_store(store) == []
    assert {str(d) for d in blob_digests(store)} == {*fake.image.blobs, fake.image.digest}


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("wrongdigest", r"rejected content that does not match its descriptor"),
        ("short", r"the registry offers \d+ bytes, the descriptor says \d+"),
        ("truncated", r"cannot talk to .*(peer closed|incomplete)"),
        ("ctype", r"unexpected content type 'text/plain' for a manifest"),
        ("htmlpage", r"unexpected content type 'text/html' for a manifest"),
        ("htmlerror", r"404 Not Found: the server answered with an HTML page"),
        ("manifestdigest", r"Docker-Content-Digest sha256:0+ does not match"),
        ("always500", r"500 Internal Server Error: UNKNOWN: boom"),
    ],
)
def test_bad_answers_are_rejected_and_store_is_unchanged(
    fake: FakeRegistry, registries: Registries, store: Store, scenario: str, message: str
) -> None:
    before = blob_digests(store)
    with pytest.raises(RegistryError, match=message) as info:
        pull(store, f"{fake.host}/{scenario}/app:1", registries=registries)
    assert "\n" not in str(info.value)
    assert blob_digests(store) == before
    assert store.images().all() == []
    assert check_store(store) == []
    assert store.content.ingests() == []


def test_manifest_by_digest_is_verified(
    fake: FakeRegistry, registries: Registries, store: Store
) -> None:
    with pytest.raises(RegistryError, match=r"sent content with digest sha256:\w+, not"):
        pull(store, f"{fake.host}/wrongmanifest/app@{fake.image.digest}", registries=registries)
    assert blob_digests(store) == set()


def test_unreachable_registry_is_one_clear_error(
    registries: Registries, store: Store, tmp_path: Path
) -> None:
    from reghelp import free_port

    with pytest.raises(RegistryError, match=r"cannot talk to 127\.0\.0\.1") as info:
        pull(store, f"127.0.0.1:{free_port()}/none/app:1", registries=registries)
    assert "reachable" in info.value.hint
    assert json.dumps(str(info.value)).count("\\n") == 0
