"""A hostile registry never makes bale hang or crash: every misbehaviour ends, on time, in one
located RegistryError, and the store is as it was."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import Hostile, Image, Request, head, hold, reply, small_image, start_hostile, trickle
from reghelp import FAST_RETRY, blob_digests

from bale.errors import BaleError, InvalidArgument, RegistryError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.registry import pull
from bale.registry.hosts import HostConfig, HostsConfig
from bale.registry.limits import Limits
from bale.registry.transport import Registries, RegistryOptions, RetryPolicy
from bale.store.check import check_store
from bale.store.local import Store

LIMITS = Limits(timeout=2, min_rate=2000, rate_window=1)
# Far above the 2 s deadline even on a loaded machine; far below "hangs forever".
ON_TIME = 15.0


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = start_hostile()
    yield server
    server.close()


@pytest.fixture
def image(hostile: Hostile) -> Image:
    image = small_image()
    hostile.serve_image("app", image)
    return image


def _registries(
    hostile: Hostile, retry: RetryPolicy = FAST_RETRY, limits: Limits = LIMITS
) -> Registries:
    hosts = HostsConfig(hosts=((hostile.host, HostConfig(http=True)),))
    return Registries(RegistryOptions(hosts=hosts, retry=retry, limits=limits))


@pytest.fixture
def regs(hostile: Hostile, docker_config: Path) -> Iterator[Registries]:
    with _registries(hostile) as registries:
        yield registries


def _fails(store: Store, ref: str, registries: Registries, message: str) -> RegistryError:
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


# -- hangs ---------------------------------------------------------------------------------


def test_a_registry_that_never_answers_hits_the_deadline(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    hostile.route("/v2/app/manifests/1", lambda s, r: hold(s, hostile.stop))
    error = _fails(
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
    _fails(store, f"{hostile.host}/app:1", regs, r"did not finish within the 2 s timeout")


def test_a_trickling_blob_is_cut_off_by_the_minimum_rate_and_leaves_no_partial_blob(
    hostile: Hostile, regs: Registries, store: Store, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]

    def slow(sock: socket.socket, req: Request) -> None:
        sock.sendall(head(200, {"Content-Length": str(len(blob))}) + blob[:1000])
        trickle(sock, blob[1000:], hostile.stop, every=0.05)

    hostile.route(f"/v2/app/blobs/{image.layer.digest}", slow)
    error = _fails(
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
    _fails(
        store, f"{hostile.host}/app:1", regs, r"moved \d+ bytes in 1(\.\d)? s, below the minimum"
    )


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
    with _registries(hostile, limits=limits) as registries:
        error = _fails(
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
    with _registries(hostile, retry=patient) as registries:
        _fails(store, f"{hostile.host}/app:1", registries, r"503 X: UNAVAILABLE: busy")
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
    _fails(store, f"{hostile.host}/app:1", regs, message)


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
    _fails(
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
    _fails(
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
    _fails(store, f"{hostile.host}/app:1", regs, r"nested deeper than 64 levels")
    bomb = b'{"mediaType":"' + mediatype.OCI_MANIFEST.encode() + b'","x":' + b"[" * 100_000
    _manifest_route(hostile, bomb)
    _fails(
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
    _fails(
        store,
        f"{hostile.host}/app:1",
        regs,
        r"the body is not a application/vnd\.oci\.image\.manifest\.v1\+json document "
        r"\(it says application/vnd\.oci\.image\.index\.v1\+json\)",
    )
    _manifest_route(hostile, image.manifest, "application/octet-stream")
    _fails(
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
    _fails(
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
    _fails(
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


# -- auth ----------------------------------------------------------------------------------


def _bearer(hostile: Hostile, realm: str | None = None) -> None:
    realm = realm or f"http://{hostile.host}/token"
    challenge = f'Bearer realm="{realm}",service="svc",scope="repository:app:pull"'
    unauthorized = lambda s, r: reply(  # noqa: E731
        s,
        401,
        b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
        WWW_Authenticate=challenge,
    )
    hostile.route("/v2/", unauthorized)
    hostile.route("/v2/app/manifests/1", unauthorized)


def test_a_challenge_loop_ends_after_one_renewal(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    _bearer(hostile)
    hostile.route("/token", lambda s, r: reply(s, 200, b'{"token":"t","expires_in":300}'))
    _fails(store, f"{hostile.host}/app:1", regs, r"401 X: UNAUTHORIZED: authentication required")
    assert hostile.hits["/v2/app/manifests/1"] == 2
    assert hostile.hits["/token"] == 2


@pytest.mark.parametrize(
    ("token_reply", "message"),
    [
        ((401, b"{}"), r"401 unauthorized: authentication required for 127\.0\.0\.1"),
        ((200, b"<html>hello</html>"), r"malformed JSON in the token service's reply for 127"),
        (
            (200, b"[" * 100_000),
            r"malformed JSON in the token service's reply for .*: nested deeper than 64",
        ),
        ((200, b'{"token": 5}'), r"the token service of 127\.0\.0\.1:\d+ sent no token"),
        ((200, b"[]"), r"the token service of .* sent no token"),
        ((200, b" " * (2 << 20)), r"token service: more than 1048576 bytes; refusing to read"),
    ],
)
def test_a_bad_token_service_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store, token_reply: tuple[int, bytes], message: str
) -> None:
    _bearer(hostile)
    status, body = token_reply
    hostile.route("/token", lambda s, r: reply(s, status, body))
    _fails(
        store, f"{hostile.host}/app:1", regs, rf"^fetch manifest {hostile.host}/app:1: {message}"
    )


@pytest.mark.parametrize(
    ("realm", "message"),
    [
        ("http://[::1", r"named an invalid token service 'http://\[::1'"),
        ("file:///etc/passwd", r"sent a bearer challenge without a realm"),
    ],
)
def test_an_unusable_realm_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store, realm: str, message: str
) -> None:
    _bearer(hostile, realm)
    _fails(store, f"{hostile.host}/app:1", regs, message)


def test_a_token_service_that_never_answers_hits_the_deadline(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    _bearer(hostile)
    hostile.route("/token", lambda s, r: hold(s, hostile.stop))
    _fails(store, f"{hostile.host}/app:1", regs, r"did not finish within the 2 s timeout")


# -- through the command line --------------------------------------------------------------


def _bale(
    tmp_path: Path, hostile: Hostile, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "registries.toml"
    config.write_text(f'[registry."{hostile.host}"]\nhttp = true\n')
    full = {
        **os.environ,
        "BALE_ROOT": str(tmp_path / "root"),
        "DOCKER_CONFIG": str(tmp_path),
        "BALE_REGISTRIES_CONFIG": str(config),
        **env,
    }
    full.pop("BALE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bale", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        check=False,
    )


def test_cli_pull_from_a_silent_registry_ends_on_time_with_the_setting_named(
    hostile: Hostile, tmp_path: Path
) -> None:
    hostile.route("/v2/app/manifests/1", lambda s, r: hold(s, hostile.stop))
    start = time.monotonic()
    done = _bale(tmp_path, hostile, "pull", f"{hostile.host}/app:1", BALE_REGISTRY_TIMEOUT="2")
    assert time.monotonic() - start < ON_TIME + 5  # interpreter start-up included
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert done.stderr.splitlines() == [
        f"ERROR: fetch manifest {hostile.host}/app:1: {hostile.host} did not finish within "
        "the 2 s timeout",
        "hint: raise it with BALE_REGISTRY_TIMEOUT=SECONDS, or timeout = SECONDS under "
        f'[limits] or [registry."{hostile.host}"] in {tmp_path / "registries.toml"}',
    ]


def test_cli_pull_of_a_trickling_blob_names_the_minimum_rate(
    hostile: Hostile, tmp_path: Path, image: Image
) -> None:
    blob = image.blobs[str(image.layer.digest)]
    hostile.route(
        f"/v2/app/blobs/{image.layer.digest}",
        lambda s, r: (
            s.sendall(head(200, {"Content-Length": str(len(blob))})),
            trickle(s, blob, hostile.stop, every=0.05),
        ),
    )
    done = _bale(
        tmp_path,
        hostile,
        "pull",
        f"{hostile.host}/app:1",
        BALE_REGISTRY_MIN_RATE="2000",
        BALE_REGISTRY_RATE_WINDOW="2",
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "below the minimum rate of 2000 bytes/s" in done.stderr
    assert "hint: raise it with BALE_REGISTRY_MIN_RATE=BYTES_PER_SECOND" in done.stderr
    # No partial blob: the store holds nothing, not even an ingest.
    with Store(tmp_path / "root") as store:
        assert blob_digests(store) == set() and store.content.ingests() == []


def test_cli_redirect_loop_is_an_error_not_a_crash(hostile: Hostile, tmp_path: Path) -> None:
    hostile.route(
        "/v2/app/manifests/1",
        lambda s, r: s.sendall(
            head(302, {"Location": "/v2/app/manifests/1", "Content-Length": "0"})
        ),
    )
    done = _bale(tmp_path, hostile, "pull", f"{hostile.host}/app:1")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "redirected too many times" in done.stderr


def test_bad_limit_settings_are_reported(hostile: Hostile, tmp_path: Path) -> None:
    done = _bale(tmp_path, hostile, "pull", f"{hostile.host}/app:1", BALE_REGISTRY_TIMEOUT="soon")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "environment: timeout must be a number, not 'soon'" in done.stderr


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


@pytest.mark.parametrize(
    "challenge",
    [
        'Bearer realm="' + "a" * 90_000,  # unterminated quote, 90 KB
        "Bearer " + "x=," * 30_000,
        'Bearer realm="http://127.0.0.1:1/t",' + 'k="\\' * 20_000,
    ],
)
def test_a_monstrous_challenge_is_parsed_quickly_and_refused(
    hostile: Hostile, regs: Registries, store: Store, challenge: str
) -> None:
    hostile.route("/v2/", lambda s, r: reply(s, 401, b"{}", WWW_Authenticate=challenge))
    start = time.monotonic()
    with pytest.raises(RegistryError):
        pull(store, f"{hostile.host}/app:1", registries=regs)
    assert time.monotonic() - start < ON_TIME


def test_a_token_that_cannot_be_a_header_is_a_located_error(
    hostile: Hostile, regs: Registries, store: Store
) -> None:
    _bearer(hostile)
    hostile.route("/token", lambda s, r: reply(s, 200, b'{"token": "a\\r\\nX-Evil: 1"}'))
    error = _fails(
        store, f"{hostile.host}/app:1", regs, r"sent a token that cannot be sent back in a header$"
    )
    assert "Evil" not in str(error)  # a credential is never printed


def test_login_to_a_silent_token_service_hits_the_deadline(
    hostile: Hostile, regs: Registries
) -> None:
    from bale.registry.credentials import Credentials
    from bale.registry.login import login

    _bearer(hostile)
    hostile.route("/token", lambda s, r: hold(s, hostile.stop))
    start = time.monotonic()
    with pytest.raises(
        RegistryError,
        match=rf"^login {hostile.host}: {hostile.host} did not "
        r"finish within the 2 s timeout$",
    ):
        login(regs, hostile.host, Credentials("u", "p"))
    assert time.monotonic() - start < ON_TIME
