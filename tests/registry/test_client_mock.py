"""The registry client against an in-memory registry (httpx.MockTransport): no sockets.

Auth challenge → token → retry, 429 with Retry-After, digest checks, and the budget's rules
with a fake clock."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bale.errors import RegistryError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Manifest
from bale.registry import deadline
from bale.registry.client import Repository
from bale.registry.credentials import Credentials
from bale.registry.deadline import Budget
from bale.registry.hosts import HostsConfig
from bale.registry.limits import Limits
from bale.registry.transport import Registries, RegistryOptions, RetryPolicy

HOST = "registry.test"
CONFIG = Descriptor(mediatype.OCI_CONFIG, Digest.of(b"{}"), 2)
MANIFEST = Manifest(CONFIG, ()).encode()
DIGEST = Digest.of(MANIFEST)
CHALLENGE = 'Bearer realm="https://auth.test/token",service="registry.test"'

Handler = Callable[[httpx.Request], httpx.Response]


def _headers(given: dict[str, str]) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in given.items()}


def _json(status: int, doc: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=doc, headers=_headers(headers))


def _manifest(body: bytes = MANIFEST, **headers: str) -> httpx.Response:
    return httpx.Response(
        200, content=body, headers={"Content-Type": mediatype.OCI_MANIFEST, **_headers(headers)}
    )


@pytest.fixture
def log() -> list[httpx.Request]:
    return []


@pytest.fixture
def connect(log: list[httpx.Request], docker_config: Path) -> Iterator[Callable[..., Registries]]:
    opened: list[Registries] = []

    def make(
        handler: Handler, *, retry: RetryPolicy | None = None, limits: Limits | None = None
    ) -> Registries:
        def record(request: httpx.Request) -> httpx.Response:
            log.append(request)
            return handler(request)

        registries = Registries(
            RegistryOptions(
                hosts=HostsConfig(),
                transport=httpx.MockTransport(record),
                retry=retry or RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.02),
                limits=limits or Limits(),
            )
        )
        opened.append(registries)
        return registries

    yield make
    for registries in opened:
        registries.close()


def test_bearer_challenge_then_token_then_the_request_again(
    connect: Callable[..., Registries], log: list[httpx.Request]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            assert request.url.params["service"] == "registry.test"
            assert request.headers["authorization"].startswith("Basic ")
            scopes = request.url.params.get_list("scope")
            token = "wide" if "repository:other:pull" in scopes else "narrow"
            return _json(200, {"token": token, "expires_in": 300})
        auth = request.headers.get("authorization", "")
        if request.url.path == "/v2/":
            return _json(401, {}, WWW_Authenticate=CHALLENGE)
        if auth == "Bearer wide":
            return _manifest(Docker_Content_Digest=str(DIGEST))
        # The registry wants a wider scope than was asked for, and says which.
        wider = CHALLENGE + ',scope="repository:app:pull repository:other:pull"'
        return _json(401, {"errors": [{"code": "DENIED"}]}, WWW_Authenticate=wider)

    registries = connect(handler)
    session = registries.session(HOST, Credentials("alice", "pw"))
    doc = Repository(session, "app").get_manifest("1")
    assert doc.data == MANIFEST and doc.descriptor.digest == DIGEST
    trail = [(r.url.host, r.url.path, r.headers.get("authorization", "")[:12]) for r in log]
    assert trail == [
        (HOST, "/v2/", ""),
        ("auth.test", "/token", "Basic YWxpY2"),
        (HOST, "/v2/app/manifests/1", "Bearer narro"),
        ("auth.test", "/token", "Basic YWxpY2"),
        (HOST, "/v2/app/manifests/1", "Bearer wide"),
    ]
    assert log[1].url.params.get_list("scope") == ["repository:app:pull"]
    assert log[3].url.params.get_list("scope") == ["repository:app:pull", "repository:other:pull"]
    # The token is kept: a second fetch asks the token service nothing.
    Repository(session, "app").get_manifest("1")
    assert [r.url.host for r in log[5:]] == [HOST, "auth.test", HOST]  # narrow scope renewed once


def test_429_waits_as_long_as_retry_after_says(
    connect: Callable[..., Registries],
    log: list[httpx.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(deadline.time, "sleep", waits.append)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return _json(200, {})
        if len(log) <= 3:  # the ping, then two refusals
            return _json(429, {"errors": [{"code": "TOOMANYREQUESTS"}]}, Retry_After="2")
        return _manifest()

    registries = connect(handler, retry=RetryPolicy(attempts=5, initial_delay=0.01, max_delay=10))
    doc = Repository(registries.session(HOST), "app").get_manifest("1")
    assert doc.data == MANIFEST
    assert len(log) == 4 and len(waits) == 2
    assert all(1.5 <= w <= 2.5 for w in waits), waits  # Retry-After 2, with ±25 % jitter


def test_429_that_never_ends_is_reported_with_its_code(
    connect: Callable[..., Registries], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadline.time, "sleep", lambda s: None)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return _json(200, {})
        return _json(429, {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]})

    registries = connect(handler)
    with pytest.raises(
        RegistryError, match="429 Too Many Requests: TOOMANYREQUESTS: slow down"
    ) as info:
        Repository(registries.session(HOST), "app").get_manifest("1")
    assert info.value.hint == "the registry is rate limiting; try again later"


def test_retry_after_past_the_deadline_is_not_waited_for(
    connect: Callable[..., Registries],
    log: list[httpx.Request],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(deadline.time, "sleep", waits.append)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return _json(200, {})
        return _json(503, {}, Retry_After="30")

    registries = connect(
        handler,
        retry=RetryPolicy(attempts=5, initial_delay=1, max_delay=60),
        limits=Limits(timeout=10),
    )
    with pytest.raises(RegistryError, match="503 Service Unavailable"):
        Repository(registries.session(HOST), "app").get_manifest("1")
    assert waits == [] and len(log) == 2  # a 30 s wait cannot end within 10 s: report now


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (_manifest(MANIFEST + b" "), r"the registry sent content with digest sha256:\w+, not "),
        (
            _manifest(Docker_Content_Digest="sha256:" + "1" * 64),
            r"Docker-Content-Digest sha256:1+ does not match the content",
        ),
    ],
)
def test_manifest_digest_mismatch(
    connect: Callable[..., Registries], response: httpx.Response, message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _json(200, {}) if request.url.path == "/v2/" else response

    registries = connect(handler)
    with pytest.raises(RegistryError, match=message) as info:
        Repository(registries.session(HOST), "app").get_manifest(str(DIGEST))
    assert info.value.code == "DIGEST_INVALID"


def test_a_manifest_larger_than_its_index_entry(connect: Callable[..., Registries]) -> None:
    registries = connect(lambda r: _json(200, {}) if r.url.path == "/v2/" else _manifest())
    expected = Descriptor(mediatype.OCI_MANIFEST, DIGEST, len(MANIFEST) - 1)
    with pytest.raises(RegistryError, match=r"\d+ bytes, but the index says \d+"):
        Repository(registries.session(HOST), "app").get_manifest(str(DIGEST), expected)


def test_a_redirect_loop_is_a_registry_error(connect: Callable[..., Registries]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return _json(200, {})
        return httpx.Response(302, headers={"Location": str(request.url)})

    registries = connect(handler)
    with pytest.raises(
        RegistryError,
        match=r"^fetch manifest registry\.test/app:1: registry"
        r"\.test redirected too many times \(a redirect loop\)$",
    ):
        Repository(registries.session(HOST), "app").get_manifest("1")


def test_a_huge_error_body_is_not_read_whole(connect: Callable[..., Registries]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return _json(200, {})
        return httpx.Response(400, content=iter([b"x" * (1 << 20)] * 512))  # 512 MiB

    registries = connect(handler)
    with pytest.raises(RegistryError, match=r"more than 1048576 bytes; refusing to read it"):
        Repository(registries.session(HOST), "app").put_manifest(
            "1", MANIFEST, mediatype.OCI_MANIFEST
        )


def test_the_deadline_holds_between_attempts(
    connect: Callable[..., Registries], log: list[httpx.Request]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return _json(200, {})
        raise httpx.ConnectError("connection refused", request=request)

    registries = connect(
        handler,
        retry=RetryPolicy(attempts=1000, initial_delay=0.1, max_delay=0.2),
        limits=Limits(timeout=1),
    )
    with pytest.raises(RegistryError, match=r"cannot talk to registry\.test: connection refused"):
        Repository(registries.session(HOST), "app").get_manifest("1")
    assert 2 < len(log) < 30


# -- the budget itself, with a fake clock --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_minimum_rate_is_an_average_over_each_window() -> None:
    clock = Clock()
    budget = Budget(
        "fetch blob x", "h:5000", min_rate=100, window=10, setting="blob_timeout", clock=clock
    )
    clock.now += 9
    budget.count(999)  # under 1000 bytes, but the window is not over yet
    clock.now += 1
    budget.count(1)  # 1000 bytes in 10 s: exactly the minimum; the window rolls over
    clock.now += 10
    with pytest.raises(
        RegistryError,
        match=r"moved 5 bytes in 10 s, below the minimum rate "
        r"of 100 bytes/s",
    ) as info:
        budget.count(5)
    assert info.value.code == "TOO_SLOW"
    assert "BALE_REGISTRY_MIN_RATE" in info.value.hint


def test_waits_are_shortened_to_what_the_budget_allows() -> None:
    clock = Clock()
    budget = Budget("fetch manifest x", "h", deadline=60, clock=clock)
    assert budget.wait(120) == 60
    clock.now += 59.5
    assert budget.wait(120) == 0.5
    clock.now += 1
    with pytest.raises(
        RegistryError,
        match=r"^fetch manifest x: h did not finish within the "
        r"60 s timeout$",
    ):
        budget.wait(120)
    rate = Budget("b", "h", min_rate=10, window=30, clock=clock)
    assert rate.wait(120) == 30  # silence beyond the window fails it
    rate.count(300)
    assert rate.wait(120) == 60  # a satisfied window rolls over: the next one may be silent


def test_a_budget_is_per_thread_and_the_outer_one_governs() -> None:
    outer = Budget("outer", "h", deadline=5)
    inner = Budget("inner", "h", deadline=1)
    assert Budget.active() is None
    with outer.activate() as active:
        assert active is outer
        with inner.activate() as nested:
            assert nested is outer
        assert Budget.active() is outer
    assert Budget.active() is None


@pytest.mark.parametrize("proxy", [None, "http://127.0.0.1:9"])
def test_the_budget_backend_goes_under_real_httpx_clients(proxy: str | None) -> None:
    # If httpx changes its insides, this fails rather than deadlines silently weakening.
    with httpx.Client(proxy=proxy) as client:
        assert deadline.install(client)
        assert deadline.install(client)  # idempotent


def test_limits_from_config_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registries.toml"
    path.write_text(
        "[limits]\ntimeout = 30\nmin_rate = 1024\n"
        '[registry."slow.example:5000"]\ntimeout = 300\nrate_window = 90\n'
    )
    hosts = HostsConfig.load(path)
    assert hosts.limits_for("other") == Limits(timeout=30, min_rate=1024)
    assert hosts.limits_for("slow.example:5000") == Limits(
        timeout=300, min_rate=1024, rate_window=90
    )
    monkeypatch.setenv("BALE_REGISTRY_TIMEOUT", "7.5")
    monkeypatch.setenv("BALE_REGISTRY_MIN_RATE", "0")
    assert hosts.limits_for("slow.example:5000") == Limits(timeout=7.5, min_rate=0, rate_window=90)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[limits]\ntimeout = -1\n", r"\[limits\]: registry limit timeout must be a number >= 0"),
        ("[limits]\nspeed = 1\n", r"\[limits\]: unknown limit 'speed'"),
        ('[limits]\nmin_rate = "fast"\n', r"min_rate must be a number, not 'fast'"),
        ('[registry."h"]\ntimeout = 0\n', r"registry\.'h': .*timeout and rate_window must be"),
        ("limits = 5\n", r"\[limits\] must be a table"),
    ],
)
def test_bad_limits_in_the_config_are_reported_with_the_file(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "registries.toml"
    path.write_text(toml)
    with pytest.raises(BaseException, match=message) as info:
        HostsConfig.load(path)
    assert str(path) in str(info.value)
    assert json.dumps(str(info.value)).count("\\n") == 0


def test_credentials_never_go_to_another_host(
    connect: Callable[..., Registries], log: list[httpx.Request]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.url.path.endswith("/uploads/"):
            return httpx.Response(202, headers={"Location": "https://elsewhere.test/upload/1"})
        return httpx.Response(201)

    registries = connect(handler)
    repo = Repository(registries.session(HOST, Credentials("alice", "pw")), "app", push=True)
    desc = Descriptor(mediatype.OCI_LAYER, Digest.of(b"data"), 4)
    repo.upload_blob(desc, lambda: io.BytesIO(b"data"), chunk_size=1 << 20)
    assert [(r.method, r.url.host, "authorization" in r.headers) for r in log] == [
        ("GET", HOST, False),
        ("POST", HOST, True),
        ("PUT", "elsewhere.test", False),
    ]
