"""A hostile registry never makes bale hang or crash: every misbehaviour ends, on time, in one
located RegistryError, and the store is as it was. (Auth and the command line: in
test_hostile_auth_cli.py.)"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from hostile import (
    LIMITS,
    Hostile,
    Image,
    Request,
    fails,
    head,
    hold,
    registries_for,
    reply,
    trickle,
)
from reghelp import blob_digests

from bale.errors import BaleError, InvalidArgument, RegistryError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.registry import pull
from bale.registry.limits import Limits
from bale.registry.transport import Registries, RetryPolicy
from bale.store.check import check_store
from bale.store.local import Store

# -- hangs ---------------------------------------------------------------------------------


def test_a_registry_that_never_answers_hits_the_deadline(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    hostile.route("/v2/app/manifests/1", lambda s, r: hold(s, hostile.stop))
    error = fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        rf"^fetch manifest {hostile.host}/app:1: {hostile.host} did not finish "
        r"within the 2 s timeout$",
    )
    assert error.hint.startswith("raise it with BALE_REGISTRY_TIMEOUT=SECONDS, or timeout = ")
    assert hostile.hits["/v2/app/manifests/1"] == 1  # no retry past the deadline


@pytest.mark.parametrize("part", ["headers", "body"])
def test_trickled_manifest_headers_or_body_hit_the_deadline(
    hostile: Hostile, regs: Registries, store: Store, image: Image, part: str
) -> None:
    def slow(sock: socket.socket, req: Request) -> None:
        headers = head(
            200,
            {"Content-Type": mediatype.OCI_MANIFEST, "Content-Length": str(len(image.manifest))},
        )
        if part == "body":
            sock.sendall(headers)
            trickle(sock, image.manifest, hostile.stop)
        else:
            trickle(sock, headers + image.manifest, hostile.stop)

    hostile.route("/v2/app/manifests/1", slow)
    fails(store, f"{hostile.host}/app:1", regs, r"did not finish within the 2 s timeout")


def test_a_trickling_blob_is_cut_off_by_the_minimum_rate_and_leaves_no_partial_blob(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]

    def slow(sock: socket.socket, req: Request) -> None:
        sock.sendall(head(200, {"Content-Length": str(len(blob))}) + blob[:1000])
        trickle(sock, blob[1000:], hostile.stop, every=0.05)

    hostile.route(f"/v2/app/blobs/{image.layer.digest}", slow)
    error = fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        rf"^fetch blob {hostile.host}/app@{image.layer.digest}: {hostile.host} moved "
        r"\d+ bytes in 1(\.\d)? s, below the minimum rate of 2000 bytes/s$",
    )
    assert error.hint.startswith("raise it with BALE_REGISTRY_MIN_RATE=BYTES_PER_SECOND")
    assert error.code == "TOO_SLOW"
    assert hostile.hits[f"/v2/app/blobs/{image.layer.digest}"] == 1  # too slow is not retried


def test_a_blob_without_headers_is_cut_off_within_the_rate_window(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    hostile.route(f"/v2/app/blobs/{image.layer.digest}", lambda s, r: hold(s, hostile.stop))
    fails(store, f"{hostile.host}/app:1", regs, r"moved \d+ bytes in 1(\.\d)? s, below the minimum")


def test_a_slow_but_moving_blob_completes_past_the_request_deadline(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]

    def steady(sock: socket.socket, req: Request) -> None:
        # About 16 KB/s, 8 times the minimum, for longer than the 2 s request deadline.
        sock.sendall(head(200, {"Content-Length": str(len(blob))}))
        for i in range(0, len(blob), 4000):
            sock.sendall(blob[i : i + 4000])
            time.sleep(0.25)

    hostile.route(f"/v2/app/blobs/{image.layer.digest}", steady)
    start = time.monotonic()
    result = pull(store, f"{hostile.host}/app:1", registries=regs)
    assert time.monotonic() - start > LIMITS.timeout
    assert result.target.digest == image.digest
    assert store.content.exists(image.layer.digest)
    assert check_store(store) == []


def test_a_blob_deadline_bounds_a_moving_transfer_too(
    hostile: Hostile, docker_config: Path, store: Store, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]

    def steady(sock: socket.socket, req: Request) -> None:
        sock.sendall(head(200, {"Content-Length": str(len(blob))}))
        for i in range(0, len(blob), 4000):
            sock.sendall(blob[i : i + 4000])
            time.sleep(0.25)

    hostile.route(f"/v2/app/blobs/{image.layer.digest}", steady)
    limits = Limits(timeout=2, blob_timeout=1, min_rate=100, rate_window=1)
    with registries_for(hostile, limits=limits) as registries:
        error = fails(
            store,
            f"{hostile.host}/app:1",
            registries,
            r"did not finish within the 1 s blob timeout$",
        )
    assert "BALE_REGISTRY_BLOB_TIMEOUT=SECONDS" in error.hint


def test_retries_stop_at_the_deadline(hostile: Hostile, docker_config: Path, store: Store) -> None:
    hostile.route(
        "/v2/app/manifests/1",
        lambda s, r: reply(
            s, 503, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}', Retry_After="1"
        ),
    )
    patient = RetryPolicy(attempts=50, initial_delay=0.5, max_delay=1.0)
    with registries_for(hostile, retry=patient) as registries:
        fails(store, f"{hostile.host}/app:1", registries, r"503 X: UNAVAILABLE: busy")
    assert 1 < hostile.hits["/v2/app/manifests/1"] < 10


# -- protocol abuse --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Location": "/v2/app/manifests/1"}, r"redirected too many times \(a redirect loop\)"),
        ({"Location": "http://[::1"}, r"^fetch manifest .*: cannot talk to 127\.0\.0\.1:\d+: "),
        ({"Location": "ftp://example.com/x"}, r"cannot talk to .*ftp"),
        ({"Content-Length": "abc"}, r"^fetch manifest .*: cannot talk to"),
        ({"Content-Length": "-5"}, r"^fetch manifest .*: cannot talk to"),
        ({"X-Huge": "a" * 200_000}, r"^fetch manifest .*: cannot talk to"),
    ],
)
def test_broken_http_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store, headers: dict[str, str], message: str
) -> None:
    status = 307 if "Location" in headers else 200
    hostile.route("/v2/app/manifests/1", lambda s, r: s.sendall(head(status, headers) + b"{}"))
    fails(store, f"{hostile.host}/app:1", regs, message)


def test_a_connection_closed_mid_manifest_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    def cut(sock: socket.socket, req: Request) -> None:
        sock.sendall(
            head(
                200,
                {
                    "Content-Type": mediatype.OCI_MANIFEST,
                    "Content-Length": str(len(image.manifest)),
                },
            )
            + image.manifest[:20]
        )

    hostile.route("/v2/app/manifests/1", cut)
    fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        r"^fetch manifest .*app:1: cannot talk to .*(peer closed|incomplete)",
    )


def test_a_blob_longer_than_its_descriptor_is_not_read_to_the_end(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]
    sent = [0]
    extra = 64 << 20

    def endless(sock: socket.socket, req: Request) -> None:
        # No Content-Length: the body ends when the server closes, which it never would.
        sock.sendall(head(200, {"Content-Type": "application/octet-stream"}) + blob)
        junk = b"\0" * (1 << 20)
        for _ in range(extra >> 20):
            sock.sendall(junk)
            sent[0] += len(junk)

    hostile.route(f"/v2/app/blobs/{image.layer.digest}", endless)
    fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        rf"rejected content that does not match its descriptor \(more than the declared "
        rf"{image.layer.size} bytes\)",
    )
    assert sent[0] < extra  # the client stopped reading and hung up


# -- lying documents -------------------------------------------------------------------------


def _manifest_route(
    hostile: Hostile, body: bytes, ctype: str = mediatype.OCI_MANIFEST, ref: str = "1"
) -> None:
    hostile.route(
        f"/v2/app/manifests/{ref}",
        lambda s, r: reply(s, 200, body if r.method == "GET" else b"", ctype),
    )


def test_a_manifest_nesting_bomb_is_a_registry_error(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    _manifest_route(hostile, b"[" * 100_000 + b"]" * 100_000, "application/json")
    fails(store, f"{hostile.host}/app:1", regs, r"nested deeper than 64 levels")
    bomb = b'{"mediaType":"' + mediatype.OCI_MANIFEST.encode() + b'","x":' + b"[" * 100_000
    _manifest_route(hostile, bomb)
    fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        r"the body is not a application/vnd.oci.image.manifest.v1\+json document "
        r"\(malformed JSON in manifest: nested deeper than 64 levels\)",
    )


def test_a_body_that_contradicts_its_content_type(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    index = Index((Descriptor(mediatype.OCI_MANIFEST, image.digest, len(image.manifest)),))
    _manifest_route(hostile, index.encode(), mediatype.OCI_MANIFEST)
    fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        r"the body is not a application/vnd\.oci\.image\.manifest\.v1\+json document "
        r"\(it says application/vnd\.oci\.image\.index\.v1\+json\)",
    )
    _manifest_route(hostile, image.manifest, "application/octet-stream")
    fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        r"unexpected content type 'application/octet-stream' for a manifest",
    )


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (1 << 40, r"the index says it is 1099511627776 bytes, more than the 4 MiB"),
        (-1, r"^127\.0\.0\.1:\d+/app@sha256:\w+: descriptor sha256:\w+ has negative size -1"),
        (1 << 70, r"size 1180591620717411303424 is out of range"),
    ],
)
def test_absurd_sizes_in_an_index(
    hostile: Hostile, regs: Registries, store: Store, image: Image, size: int, message: str
) -> None:
    entry = {
        "mediaType": mediatype.OCI_MANIFEST,
        "digest": str(image.digest),
        "size": size,
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    doc = json.dumps(
        {"schemaVersion": 2, "mediaType": mediatype.OCI_INDEX, "manifests": [entry]}
    ).encode()
    _manifest_route(hostile, doc, mediatype.OCI_INDEX)
    with pytest.raises(RegistryError, match=message):
        pull(store, f"{hostile.host}/app:1", registries=regs, all_platforms=True)
    assert blob_digests(store) == set()


def test_a_layer_of_absurd_size_is_refused_before_reading(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    manifest = json.loads(image.manifest)
    manifest["layers"][0]["size"] = 1 << 50
    _manifest_route(hostile, json.dumps(manifest).encode())
    fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        rf"the registry offers {image.layer.size} bytes, the descriptor says {1 << 50}",
    )


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("md5:" + "0" * 32, r"unsupported digest algorithm 'md5'"),
        (
            "sha256:../../../../etc/passwd",
            r"invalid sha256 digest '\.\./\.\./\.\./\.\./etc/passwd'",
        ),
        ("../../blobs:" + "0" * 64, r"unsupported digest algorithm '\.\./\.\./blobs'"),
    ],
)
def test_unusable_digests_in_a_manifest_are_located_errors(
    hostile: Hostile, regs: Registries, store: Store, image: Image, digest: str, message: str
) -> None:
    manifest = json.loads(image.manifest)
    manifest["layers"][0]["digest"] = digest
    data = json.dumps(manifest).encode()
    _manifest_route(hostile, data)
    fails(
        store, f"{hostile.host}/app:1", regs, rf"^127\.0\.0\.1:\d+/app@{Digest.of(data)}: {message}"
    )


def test_sha512_layers_are_pulled_and_verified(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]
    layer = Descriptor(image.layer.media_type, Digest.of(blob, "sha512"), len(blob))
    data = Manifest(image.config, (layer,)).encode()
    _manifest_route(hostile, data)
    hostile.route(
        f"/v2/app/blobs/{layer.digest}",
        lambda s, r: reply(s, 200, blob, "application/octet-stream"),
    )
    pull(store, f"{hostile.host}/app:1", registries=regs)
    assert store.content.blob_path(layer.digest).parent.name == "sha512"
    assert check_store(store) == []
    # A sha512 blob that is not what its digest says is rejected like any other.
    wrong = Descriptor(layer.media_type, Digest.of(b"other", "sha512"), len(blob))
    data = Manifest(image.config, (wrong,)).encode()
    _manifest_route(hostile, data, ref="2")
    hostile.route(
        f"/v2/app/blobs/{wrong.digest}",
        lambda s, r: reply(s, 200, blob, "application/octet-stream"),
    )
    with pytest.raises(RegistryError, match="content digest mismatch"):
        pull(store, f"{hostile.host}/app:2", registries=regs)
    assert not store.content.exists(wrong.digest)


def test_names_that_climb_out_are_refused(regs: Registries, store: Store, hostile: Hostile) -> None:
    for name in (f"{hostile.host}/../etc:1", f"{hostile.host}/app/..:1", f"{hostile.host}/a:../b"):
        with pytest.raises(InvalidArgument):
            pull(store, name, registries=regs)
    assert hostile.hits.get("/v2/", 0) == 0


def test_base_error_is_the_only_kind_raised(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    """Odds and ends of broken answers: only BaleError ever comes out."""
    garbage = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde",
        b"HTTP/9.9 200 OK\r\n\r\n",
        b"not http at all\r\n\r\n",
        b"HTTP/1.1 999999999999 X\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"",
    ]
    for i, raw in enumerate(garbage):
        hostile.route(f"/v2/app/manifests/{i}", lambda s, r, raw=raw: s.sendall(raw))
        with pytest.raises(BaleError):
            pull(store, f"{hostile.host}/app:{i}", registries=regs)
