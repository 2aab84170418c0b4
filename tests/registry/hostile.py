"""A hostile registry: a raw HTTP/1.1 server on 127.0.0.1 whose every route misbehaves on
purpose (trickles, stalls, loops, lies), for the tests that bale never hangs or crashes."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from reghelp import FAST_RETRY, blob_digests, layer_tar, noise

from bale.errors import RegistryError
from bale.oci import mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Manifest
from bale.oci.platform import host_platform
from bale.registry import pull
from bale.registry.hosts import HostConfig, HostsConfig
from bale.registry.limits import Limits
from bale.registry.transport import Registries, RegistryOptions, RetryPolicy
from bale.store.check import check_store
from bale.store.local import Store


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]


Handler = Callable[[socket.socket, Request], None]


def head(status: int, headers: dict[str, str] | None = None, reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply(
    sock: socket.socket,
    status: int,
    body: bytes = b"",
    ctype: str = "application/json",
    **headers: str,
) -> None:
    extra = {"Content-Type": ctype, "Content-Length": str(len(body))}
    extra.update({k.replace("_", "-"): v for k, v in headers.items()})
    sock.sendall(head(status, extra) + body)


def hold(sock: socket.socket, stop: threading.Event, seconds: float = 120.0) -> None:
    """Keep the connection open and silent until the client hangs up (or the server stops)."""
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                if not sock.recv(65536):
                    return
            except OSError:
                return


def trickle(sock: socket.socket, data: bytes, stop: threading.Event, every: float = 0.2) -> int:
    """Send one byte per `every` seconds; returns how many went out before the client left."""
    sent = 0
    for i in range(len(data)):
        if stop.is_set():
            break
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            break
        sent += 1
        time.sleep(every)
    return sent


@dataclass
class Image:
    manifest: bytes
    config: Descriptor
    layer: Descriptor
    blobs: dict[str, bytes]

    @property
    def digest(self) -> Digest:
        return Digest.of(self.manifest)


def small_image(size: int = 50_000, seed: str = "hostile") -> Image:
    blob, diff_id = layer_tar({"f": noise(seed, size)})
    layer = Descriptor(mediatype.OCI_LAYER_GZIP, Digest.of(blob), len(blob))
    config = ImageConfig(platform=host_platform(), diff_ids=(diff_id,)).encode()
    config_desc = Descriptor(mediatype.OCI_CONFIG, Digest.of(config), len(config))
    manifest = Manifest(config_desc, (layer,)).encode()
    return Image(
        manifest, config_desc, layer, {str(layer.digest): blob, str(config_desc.digest): config}
    )


@dataclass
class Hostile:
    """Routes by exact path; unknown paths get 404. `hits` counts requests per path."""

    host: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: socketserver.ThreadingTCPServer | None = None

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def serve_image(self, repo: str, image: Image, tag: str = "1") -> None:
        """A well-behaved image at /v2/<repo>, by tag and digest, for routes to spoil."""

        def manifest(sock: socket.socket, req: Request) -> None:
            reply(
                sock,
                200,
                image.manifest if req.method == "GET" else b"",
                mediatype.OCI_MANIFEST,
                Docker_Content_Digest=str(image.digest),
            )

        for ref in (tag, str(image.digest)):
            self.routes.setdefault(f"/v2/{repo}/manifests/{ref}", manifest)
        for digest, blob in image.blobs.items():
            self.routes.setdefault(
                f"/v2/{repo}/blobs/{digest}",
                lambda s, r, b=blob: reply(s, 200, b, "application/octet-stream"),
            )

    def close(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_hostile() -> Hostile:
    state = Hostile()
    state.route("/v2/", lambda sock, req: reply(sock, 200, b"{}"))

    class Handle(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock: socket.socket = self.request
            sock.settimeout(30)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk or (not data and chunk[:1] == b"\x16"):
                        return  # gone, or a TLS hello: this server speaks plain HTTP only
                    data += chunk
            except OSError:
                return
            lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            path, _, query = target.partition("?")
            with state.lock:
                state.hits[path] = state.hits.get(path, 0) + 1
            handler = state.routes.get(path)
            try:
                if handler is None:
                    reply(sock, 404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"nope"}]}')
                else:
                    handler(sock, Request(method, path, query, headers))
            except OSError:
                pass  # the client hung up, as it should on most of these routes

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass

    server = Server(("127.0.0.1", 0), Handle)
    state.server = server
    state.host = f"127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state


# -- what the tests share --------------------------------------------------------------------

LIMITS = Limits(timeout=2, min_rate=2000, rate_window=1)
# Far above the 2 s deadline even on a loaded machine; far below "hangs forever".
ON_TIME = 15.0


def registries_for(
    hostile: Hostile, retry: RetryPolicy = FAST_RETRY, limits: Limits = LIMITS
) -> Registries:
    hosts = HostsConfig(hosts=((hostile.host, HostConfig(http=True)),))
    return Registries(RegistryOptions(hosts=hosts, retry=retry, limits=limits))


def fails(store: Store, ref: str, registries: Registries, message: str) -> RegistryError:
    """Pull must fail with `message`, on time, in one line, leaving the store untouched."""
    before = blob_digests(store)
    start = time.monotonic()
    with pytest.raises(RegistryError, match=message) as info:
        pull(store, ref, registries=registries)
    assert time.monotonic() - start < ON_TIME
    assert "\n" not in str(info.value)
    assert blob_digests(store) == before
    assert store.content.ingests() == []
    assert store.images().all() == []
    assert check_store(store) == []
    return info.value


def bearer(hostile: Hostile, realm: str | None = None) -> None:
    realm = realm or f"http://{hostile.host}/token"
    challenge = f'Bearer realm="{realm}",service="svc",scope="repository:app:pull"'

    def unauthorized(s: socket.socket, r: Request) -> None:
        reply(
            s,
            401,
            b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
            WWW_Authenticate=challenge,
        )

    hostile.route("/v2/", unauthorized)
    hostile.route("/v2/app/manifests/1", unauthorized)
