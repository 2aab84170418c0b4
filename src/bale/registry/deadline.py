"""Budgets: every registry operation ends by its deadline, and a blob transfer keeps moving.

httpx's timeouts bound each socket operation alone, so a server that trickles a byte every
few seconds — in headers or body — keeps a client waiting forever. A `Budget` is the whole
operation's allowance (a deadline, a minimum rate averaged over a window); it is active for
the thread doing the operation (`Budget.active`), and a network backend installed under httpx
(`install`) counts every byte each socket moves and shortens every wait to what the budget
still allows, so the operation fails on time with one clear RegistryError.

With a transport that has no sockets (an `httpx.MockTransport`), the deadline is still
checked between attempts and between chunks of a body.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from bale.errors import RegistryError
from bale.registry.limits import ENV

_local = threading.local()


def _seconds(value: float) -> str:
    return f"{value:g} s"


class Budget:
    """The allowance of one operation (`what`, on `host`); used by one thread at a time."""

    def __init__(
        self,
        what: str,
        host: str,
        *,
        deadline: float = 0.0,
        min_rate: int = 0,
        window: float = 30.0,
        setting: str = "timeout",
        config: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.host = host
        self.limit = deadline
        self.min_rate = min_rate
        self.window = window
        self.setting = setting  # the limit that bounds this operation's duration
        self.config = config  # the registries config file, named in hints
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + deadline if deadline > 0 else None
        self._window_start = self.started
        self._window_bytes = 0
        self.moved = 0

    # -- the thread's active budget ------------------------------------------------------

    @staticmethod
    def active() -> Budget | None:
        budget: Budget | None = getattr(_local, "budget", None)
        return budget

    @contextmanager
    def activate(self) -> Iterator[Budget]:
        """Make this the thread's budget, unless one is active already (it then governs)."""
        outer = Budget.active()
        if outer is not None:
            yield outer
            return
        _local.budget = self
        try:
            yield self
        finally:
            _local.budget = None

    # -- accounting ----------------------------------------------------------------------

    def count(self, n: int) -> None:
        """Bytes moved on the operation's connection (either way); fails when too slow."""
        self.moved += n
        self._window_bytes += n
        self.check()

    def check(self) -> None:
        now = self._clock()
        if self.deadline is not None and now >= self.deadline:
            raise self._deadline_error()
        if self.min_rate and now - self._window_start >= self.window:
            if self._window_bytes < self.min_rate * self.window:
                raise self._rate_error(now - self._window_start)
            self._window_start, self._window_bytes = now, 0

    def wait(self, timeout: float | None) -> float | None:
        """A socket timeout shortened to what the budget allows (checked first)."""
        self.check()
        now = self._clock()
        allowed = [] if timeout is None else [timeout]
        if self.deadline is not None:
            allowed.append(self.deadline - now)
        if self.min_rate:
            # Silence past the window's end fails it; a satisfied window rolls over there.
            end = self._window_start + self.window - now
            enough = self._window_bytes >= self.min_rate * self.window
            allowed.append(end + self.window if enough else end)
        return max(0.01, min(allowed)) if allowed else None

    def can_sleep(self, seconds: float) -> bool:
        """Whether a retry's back-off still ends before the deadline."""
        return self.deadline is None or self._clock() + seconds < self.deadline

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
        self._window_start, self._window_bytes = self._clock(), 0  # waiting is not stalling

    # -- errors --------------------------------------------------------------------------

    def _hint(self, setting: str, unit: str) -> str:
        where = f'[limits] or [registry."{self.host}"] in {self.config or "registries.toml"}'
        return f"raise it with {ENV[setting]}={unit}, or {setting} = {unit} under {where}"

    def _deadline_error(self) -> RegistryError:
        return RegistryError(
            f"{self.what}: {self.host} did not finish within the {_seconds(self.limit)} "
            f"{self.setting.replace('_', ' ')}",
            code="TIMEOUT",
            hint=self._hint(self.setting, "SECONDS"),
        )

    def _rate_error(self, elapsed: float) -> RegistryError:
        return RegistryError(
            f"{self.what}: {self.host} moved {self._window_bytes} bytes in "
            f"{_seconds(round(elapsed, 1))}, below the minimum rate of {self.min_rate} bytes/s",
            code="TOO_SLOW",
            hint=self._hint("min_rate", "BYTES_PER_SECOND") + " (0 turns the check off)",
        )

    def expired(self) -> RegistryError | None:
        """The error to report when a socket wait ran out because of this budget."""
        try:
            self.check()
        except RegistryError as exc:
            return exc
        return None


# -- the network layer under httpx -----------------------------------------------------------


def _timed_out(exc: httpcore.TimeoutException) -> BaseException:
    budget = Budget.active()
    error = budget.expired() if budget is not None else None
    return error if error is not None else exc


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = Budget.active()
        if budget is None:
            return self._inner.read(max_bytes, timeout)
        try:
            data = self._inner.read(max_bytes, budget.wait(timeout))
        except httpcore.TimeoutException as exc:
            raise _timed_out(exc) from None
        budget.count(len(data))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        budget = Budget.active()
        if budget is None:
            return self._inner.write(buffer, timeout)
        # Written in pieces so a server that stops reading is noticed within the window.
        view = memoryview(buffer)
        step = 64 << 10
        for i in range(0, len(view), step):
            piece = view[i : i + step]
            try:
                self._inner.write(bytes(piece), budget.wait(timeout))
            except httpcore.TimeoutException as exc:
                raise _timed_out(exc) from None
            budget.count(len(piece))
        return None

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = Budget.active()
        if budget is not None:
            timeout = budget.wait(timeout)
        try:
            return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))
        except httpcore.TimeoutException as exc:
            raise _timed_out(exc) from None

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        budget = Budget.active()
        if budget is not None:
            timeout = budget.wait(timeout)
        try:
            inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        except httpcore.TimeoutException as exc:
            raise _timed_out(exc) from None
        return _Stream(inner)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(client: httpx.Client) -> bool:
    """Put the budget-keeping backend under every connection pool of an httpx client.

    httpx has no public hook for its network backend; its pools keep one in
    `_network_backend`, read whenever a connection opens. False when the layout is not the
    expected one (the deadline then holds only between attempts and chunks).
    """
    transports: list[Any] = [client._transport, *client._mounts.values()]
    installed = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            if not isinstance(backend, _Backend):
                pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
            installed = True
    return installed
