"""How long a registry may take: deadlines and the minimum transfer rate.

Each registry operation runs against a budget built from these limits (see `deadline.py`):

    timeout       seconds for one small request — ping, token, manifest, HEAD, mount, manifest
                  push — retries and waits for them included
    blob_timeout  seconds for one blob download or upload, retries included; 0 means none
    min_rate      bytes/s a blob transfer must average over each `rate_window` seconds; 0: off
    rate_window   seconds over which the rate is averaged (and the longest silence tolerated)

The defaults never stop a real transfer of a large layer (a moving blob is never cut off by
time alone) yet end a stalled or trickling one within half a minute. They come from
`[limits]` in the registries config, `[registry."HOST"]` for one host, and the environment
(`BALE_REGISTRY_TIMEOUT`, `BALE_REGISTRY_BLOB_TIMEOUT`, `BALE_REGISTRY_MIN_RATE`,
`BALE_REGISTRY_RATE_WINDOW`), the environment winning.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from bale.errors import InvalidArgument

ENV = {
    "timeout": "BALE_REGISTRY_TIMEOUT",
    "blob_timeout": "BALE_REGISTRY_BLOB_TIMEOUT",
    "min_rate": "BALE_REGISTRY_MIN_RATE",
    "rate_window": "BALE_REGISTRY_RATE_WINDOW",
}


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0
    blob_timeout: float = 0.0
    min_rate: int = 4096
    rate_window: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value < 0:
                raise InvalidArgument(f"registry limit {f.name} must be a number >= 0")
        if self.timeout <= 0 or self.rate_window <= 0:
            raise InvalidArgument("registry limits timeout and rate_window must be above 0")

    def updated(self, values: Mapping[str, Any], where: str) -> Limits:
        """These limits with some replaced; `where` names the source in errors."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise InvalidArgument(
                    f"{where}: unknown limit {key!r}", hint=f"known: {', '.join(sorted(known))}"
                )
            changes[key] = _number(key, raw, where)
        try:
            return replace(self, **changes)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc.message}") from None

    def with_environment(self, environ: Mapping[str, str] | None = None) -> Limits:
        environ = os.environ if environ is None else environ
        values = {key: environ[name] for key, name in ENV.items() if environ.get(name, "")}
        return self.updated(values, "environment") if values else self


def _number(key: str, raw: object, where: str) -> float | int:
    if isinstance(raw, bool):
        raise InvalidArgument(f"{where}: {key} must be a number, not {raw!r}")
    try:
        value = float(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise InvalidArgument(f"{where}: {key} must be a number, not {raw!r}") from None
    if not isinstance(value, int | float):
        raise InvalidArgument(f"{where}: {key} must be a number, not {raw!r}")
    if key == "min_rate":
        return int(value) if math.isfinite(value) else -1
    return float(value)
