"""HTTP to one registry host: API ping, auth (anonymous, basic, bearer token) and retries.

httpx is the one seam: `Registries(transport=...)` takes any httpx transport, so the same code
runs against a real registry, a fake server, or an in-memory handler.
"""

from __future__ import annotations

import base64
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bale.errors import InvalidArgument, RegistryError
from bale.oci import jsonread
from bale.registry import deadline
from bale.registry.auth import Challenge, Scope, merge_scopes
from bale.registry.credentials import Credentials, DockerConfig
from bale.registry.deadline import Budget
from bale.registry.errors import response_error, transport_error
from bale.registry.hosts import HostsConfig, api_host
from bale.registry.limits import Limits

# 429 and server errors, except those that say the request itself can never work.
RETRY_STATUS = frozenset({429, *range(500, 600)} - {501, 505})
USER_AGENT = "bale/0.1"
# What a broken connection or a timed-out wait raises: worth another attempt. Other httpx
# errors (redirect loops, unsupported schemes, bad URLs, undecodable bodies) never heal.
RETRYABLE = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
# What a bearer token may hold: visible ASCII (RFC 6750 allows less; registries use JWTs).
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]+")
# Bodies of answers that are not streamed (tokens, errors, upload replies) are read at most
# this far; a registry has no reason to send more.
MAX_REPLY = 1 << 20

Body = bytes | Callable[[], Iterable[bytes]] | None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff (with jitter) for 429, 5xx and connection errors."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: str = "") -> float:
        base = min(self.max_delay, self.initial_delay * (2**attempt))
        if retry_after.isdigit():
            base = min(self.max_delay, max(base, float(retry_after)))
        return float(base * (0.75 + random.random() / 2))


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class Session:
    """One registry host. Thread-safe: layers move in parallel through one session."""

    domain: str
    client: httpx.Client
    credentials: Credentials
    retry: RetryPolicy
    insecure: bool
    plain_http: bool
    limits: Limits = field(default_factory=Limits)
    config_path: str = ""  # the registries config, named in hints
    host: str = ""
    base_url: str = ""
    challenge: Challenge | None = None
    _pinged: bool = False
    _tokens: dict[tuple[str, ...], _Token] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Held while fetching a token, so parallel transfers wait for one instead of each asking.
    _token_lock: threading.Lock = field(default_factory=threading.Lock)
    token_requests: int = 0

    def __post_init__(self) -> None:
        self.host = self.host or api_host(self.domain)

    # -- ping ----------------------------------------------------------------------------

    def ping(self) -> None:
        """Find the scheme and the auth challenge (GET /v2/), once per session."""
        with self.operation(f"ping {self.domain}"), self._lock:
            if self._pinged:
                return
            if self.plain_http:
                schemes = ["http"]
            else:
                schemes = ["https", "http"] if self.insecure else ["https"]
            last: RegistryError | None = None
            for i, scheme in enumerate(schemes):
                url = f"{scheme}://{self.host}/v2/"
                # Probing HTTPS on a plain-HTTP registry fails at once; only the last try retries.
                final = i == len(schemes) - 1
                try:
                    response = self._send(
                        "GET", url, {}, None, None, retry=final, what=f"ping {url}"
                    )
                except RegistryError as exc:
                    if exc.code in ("TIMEOUT", "TOO_SLOW"):
                        raise
                    last = exc
                    continue
                response.close()  # the status and headers are all a ping needs
                if response.status_code == 401:
                    self.challenge = Challenge.parse(response.headers.get("www-authenticate", ""))
                elif response.status_code != 200:
                    raise RegistryError(
                        f"{self.domain} is not a registry: GET /v2/ answered "
                        f"{response.status_code} {response.reason_phrase}",
                        status=response.status_code,
                        hint="check the registry address",
                    )
                self.base_url = f"{scheme}://{self.host}"
                self._pinged = True
                return
            assert last is not None
            raise last

    # -- requests ------------------------------------------------------------------------

    def operation(self, what: str, kind: str = "request") -> AbstractContextManager[Budget]:
        """The budget of one operation, active for this thread (see deadline.py).

        `request`: a small request, bounded by `timeout`; `blob`: a blob transfer, bounded by
        `blob_timeout` and the minimum rate; `commit`: the wait for a registry to finish an
        upload (it may copy a large blob in its storage), bounded by `blob_timeout` only.
        """
        limits = self.limits
        if kind == "request":
            budget = Budget(
                what,
                self.domain,
                deadline=limits.timeout,
                setting="timeout",
                config=self.config_path,
            )
        else:
            budget = Budget(
                what,
                self.domain,
                deadline=limits.blob_timeout,
                min_rate=limits.min_rate if kind == "blob" else 0,
                window=limits.rate_window,
                setting="blob_timeout",
                config=self.config_path,
            )
        return budget.activate()

    def request(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[Scope, ...] = (),
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: Body = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with auth and retries; the caller checks the status (and closes a stream).

        Runs under the thread's active budget, or a `request` budget of its own. A streamed
        response must be read under the caller's budget (`with session.operation(...)`);
        otherwise the body is read here, at most MAX_REPLY bytes.
        """
        with self.operation(what):
            self.ping()
            url = path if path.startswith(("http://", "https://")) else self.base_url + path
            # Credentials go to the registry only, never to another host an upload location
            # names (containerd's rule: auth only for hosts that challenged).
            own = _origin(url) == _origin(self.base_url)
            scopes = merge_scopes(scopes)
            renewed = False
            while True:
                extra = dict(headers or {})
                auth = self._authorization(scopes, what) if own else ""
                if auth:
                    extra["Authorization"] = auth
                response = self._send(method, url, extra, params, content, what=what)
                if response.status_code == 401 and not renewed and self.challenge is not None:
                    challenge = Challenge.parse(response.headers.get("www-authenticate", ""))
                    if challenge is not None and challenge.scheme == "bearer":
                        # A token without the needed scope: ask once more, for what the
                        # registry named.
                        renewed = True
                        response.close()
                        scopes = merge_scopes(scopes + Scope.parse_many(challenge.param("scope")))
                        with self._lock:
                            self._tokens.pop(tuple(str(s) for s in scopes), None)
                            if self.challenge.scheme != "bearer":
                                self.challenge = challenge
                        continue
                return response if stream else buffered(response, MAX_REPLY, what, self.domain)

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        content: Body,
        *,
        what: str,
        retry: bool = True,
    ) -> httpx.Response:
        """One request, retried on connection errors, 429 and 5xx within the budget; streamed."""
        budget = Budget.active()
        attempts = self.retry.attempts if retry else 1
        for attempt in range(attempts):
            if budget is not None:
                budget.check()
            body = content() if callable(content) else content
            try:
                request = self.client.build_request(
                    method,
                    url,
                    headers={"User-Agent": USER_AGENT, **headers},
                    params=params,
                    content=body,
                )
                response = self.client.send(request, stream=True)
            except RETRYABLE as exc:
                delay = self.retry.delay(attempt)
                if attempt + 1 >= attempts or (budget is not None and not budget.can_sleep(delay)):
                    raise transport_error(exc, what, self.domain) from None
                _sleep(budget, delay)
                continue
            except httpx.TooManyRedirects:
                raise RegistryError(
                    f"{what}: {self.domain} redirected too many times (a redirect loop)",
                    hint="the registry or a proxy in front of it is misconfigured",
                ) from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise transport_error(exc, what, self.domain) from None
            if response.status_code in RETRY_STATUS and attempt + 1 < attempts:
                delay = self.retry.delay(attempt, response.headers.get("retry-after", ""))
                if budget is None or budget.can_sleep(delay):
                    response.close()
                    _sleep(budget, delay)
                    continue
            return response
        raise AssertionError("unreachable")

    # -- auth ----------------------------------------------------------------------------

    def _authorization(self, scopes: tuple[Scope, ...], what: str) -> str:
        challenge = self.challenge
        if challenge is None:
            return ""
        if challenge.scheme == "basic":
            return self.basic_header()
        if challenge.scheme == "bearer":
            return f"Bearer {self.token(scopes, what=what)}"
        return ""

    def basic_header(self) -> str:
        creds = self.credentials
        if creds.anonymous:
            return ""
        raw = f"{creds.username}:{creds.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def token(self, scopes: tuple[Scope, ...], *, what: str) -> str:
        """A bearer token for these scopes, reused until shortly before it expires."""
        key = tuple(str(s) for s in scopes)
        with self.operation(what), self._token_lock:
            with self._lock:
                cached = self._tokens.get(key)
                if cached is not None and cached.expires > time.monotonic():
                    return cached.value
            return self._fetch_token(key, what)

    def _fetch_token(self, key: tuple[str, ...], what: str) -> str:
        assert self.challenge is not None
        realm = self.challenge.param("realm")
        if not realm.startswith(("http://", "https://")):
            raise RegistryError(f"{what}: {self.domain} sent a bearer challenge without a realm")
        params: list[tuple[str, str | int | float | bool | None]] = []
        service = self.challenge.param("service")
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in key)
        headers: dict[str, str] = {}
        if not self.credentials.anonymous:
            params.append(("account", self.credentials.username))
            headers["Authorization"] = self.basic_header()
        try:
            url = str(httpx.URL(realm).copy_merge_params(params))
        except (httpx.InvalidURL, ValueError):
            raise RegistryError(
                f"{what}: {self.domain} named an invalid token service {realm!r}"
            ) from None
        response = self._send("GET", url, headers, None, None, what=what)
        self.token_requests += 1
        if response.status_code in (401, 403):
            response.close()
            wrong = (
                "incorrect username or password"
                if not self.credentials.anonymous
                else ("authentication required")
            )
            raise RegistryError(
                f"{what}: {response.status_code} unauthorized: {wrong} for {self.domain}",
                status=response.status_code,
                code="UNAUTHORIZED",
                hint=f"log in with `bale login {self.domain}`",
            )
        if response.status_code != 200:
            raise response_error(response, f"{what}: token service", self.domain)
        data = read_body(response, MAX_REPLY, f"{what}: token service", self.domain)
        try:
            doc: Any = jsonread.loads(data, f"the token service's reply for {self.domain}")
        except InvalidArgument as exc:
            raise RegistryError(f"{what}: {exc.message}") from None
        value = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{what}: the token service of {self.domain} sent no token")
        if not _TOKEN_TEXT.fullmatch(value):
            # Said without quoting it: the error must not print a credential.
            raise RegistryError(
                f"{what}: the token service of {self.domain} sent a token that cannot be "
                "sent back in a header"
            )
        lifetime = doc.get("expires_in", 60)
        lifetime = lifetime if isinstance(lifetime, int) and lifetime > 0 else 60
        with self._lock:
            self._tokens[key] = _Token(value, time.monotonic() + max(5, lifetime - 10))
        return value


def _origin(url: str) -> tuple[str, int | None]:
    """The host a URL names, as containerd keys its auth handlers (host and port)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return ("", None)
    return (parsed.host, parsed.port)


def _sleep(budget: Budget | None, seconds: float) -> None:
    if budget is None:
        time.sleep(seconds)
    else:
        budget.sleep(seconds)


def raw_chunks(response: httpx.Response) -> Iterator[bytes]:
    """A response's body as sent, in the pieces the network delivers (at most 64 KiB, so a
    limit is noticed within one read of it); one already in memory (an in-memory transport's
    answer) as one piece."""
    if response.is_stream_consumed:
        yield response.content
    else:
        yield from response.iter_raw()


def read_body(response: httpx.Response, limit: int, what: str, host: str) -> bytes:
    """A streamed body, at most `limit` bytes (one more and it fails), then closed."""
    budget = Budget.active()
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in raw_chunks(response):
            total += len(chunk)
            if total > limit:
                raise RegistryError(f"{what}: more than {limit} bytes; refusing to read it")
            parts.append(chunk)
            if budget is not None:
                budget.check()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise transport_error(exc, what, host) from None
    finally:
        response.close()
    return b"".join(parts)


def buffered(response: httpx.Response, limit: int, what: str, host: str) -> httpx.Response:
    """The response with its body read (bounded), as a non-streamed httpx response."""
    body = read_body(response, limit, what, host)
    # Bodies stay as sent: decoding a compressed one could expand it without bound (and bale
    # asks for `identity`).
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-encoding"]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions={"reason_phrase": response.reason_phrase.encode()},
    )


@dataclass(frozen=True)
class RegistryOptions:
    hosts: HostsConfig = field(default_factory=HostsConfig)
    docker_config: DockerConfig | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.BaseTransport | None = None
    # Deadlines and minimum rate for every host; None: from `hosts` and the environment.
    limits: Limits | None = None
    # The longest wait for any one socket operation (the budgets usually end it sooner).
    socket_timeout: float = 120.0
    # Parallel blob transfers; more threads than cores only adds contention.
    max_concurrency: int = field(default_factory=lambda: max(2, min(6, os.cpu_count() or 2)))
    # Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
    chunk_size: int = 32 << 20


class Registries:
    """Sessions by registry host, sharing options; close it when done."""

    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions(hosts=HostsConfig.load())
        self._config = self.options.docker_config or DockerConfig()
        self._sessions: dict[str, Session] = {}
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def session(self, domain: str, credentials: Credentials | None = None) -> Session:
        """The session for a registry (its name as in references: `docker.io`, `h:5000`)."""
        with self._lock:
            if credentials is None and domain in self._sessions:
                return self._sessions[domain]
        hosts = self.options.hosts
        insecure = hosts.insecure(domain)
        limits = httpx.Limits(max_connections=max(8, self.options.max_concurrency * 2))
        client = httpx.Client(
            transport=self.options.transport,
            verify=not insecure,
            timeout=httpx.Timeout(self.options.socket_timeout, connect=30.0),
            follow_redirects=True,
            limits=limits,
            # Digests cover the bytes as sent; and a compressed reply could expand unbounded.
            headers={"Accept-Encoding": "identity"},
        )
        if self.options.transport is None:
            deadline.install(client)
        session = Session(
            domain=domain,
            client=client,
            credentials=credentials if credentials is not None else self._config.get(domain),
            retry=self.options.retry,
            insecure=insecure,
            plain_http=hosts.plain_http(domain),
            limits=self.options.limits or hosts.limits_for(domain),
            config_path=hosts.source,
        )
        with self._lock:
            self._clients.append(client)
            if credentials is None:
                self._sessions.setdefault(domain, session)
                return self._sessions[domain]
        return session

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
            self._sessions.clear()

    def __enter__(self) -> Registries:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
