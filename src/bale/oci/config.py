"""Image configuration: the runtime defaults, the layer diff ids and the history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bale.errors import InvalidArgument
from bale.oci import canonical
from bale.oci.digest import Digest
from bale.oci.platform import Platform


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval_ns),
            ("Timeout", self.timeout_ns),
            ("StartPeriod", self.start_period_ns),
            ("StartInterval", self.start_interval_ns),
            ("Retries", self.retries),
        ):
            if value:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Healthcheck:
        def number(key: str) -> int:
            value = obj.get(key) or 0
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidArgument(f"malformed image config: Healthcheck.{key} must be a number")
            return value

        test = obj.get("Test") or []
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            raise InvalidArgument("malformed image config: Healthcheck.Test must list strings")
        return cls(
            test=tuple(test),
            interval_ns=number("Interval"),
            timeout_ns=number("Timeout"),
            start_period_ns=number("StartPeriod"),
            start_interval_ns=number("StartInterval"),
            retries=number("Retries"),
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """The `config` object: what a container started from the image gets by default."""

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    shell: tuple[str, ...] | None = None
    on_build: tuple[str, ...] = ()
    args_escaped: bool = False

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def with_env(self, key: str, value: str) -> RuntimeConfig:
        items = [e for e in self.env if e.partition("=")[0] != key]
        items.append(f"{key}={value}")
        return replace(self, env=tuple(items))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        # Empty lists are left out, as BuildKit writes them (same meaning, same digest).
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_json()
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.args_escaped:
            out["ArgsEscaped"] = True
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RuntimeConfig:
        def strings(key: str) -> tuple[str, ...] | None:
            value = obj.get(key)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidArgument(f"malformed image config: {key} must be a list of strings")
            return tuple(value)

        def keys(key: str) -> tuple[str, ...]:
            value = obj.get(key) or {}
            if not isinstance(value, dict):
                raise InvalidArgument(f"malformed image config: {key} must be an object")
            return tuple(sorted(value))

        labels = obj.get("Labels") or {}
        if not isinstance(labels, dict):
            raise InvalidArgument("malformed image config: Labels must be an object")
        health = obj.get("Healthcheck")
        return cls(
            user=str(obj.get("User") or ""),
            exposed_ports=keys("ExposedPorts"),
            env=strings("Env") or (),
            entrypoint=strings("Entrypoint"),
            cmd=strings("Cmd"),
            volumes=keys("Volumes"),
            working_dir=str(obj.get("WorkingDir") or ""),
            labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            stop_signal=str(obj.get("StopSignal") or ""),
            healthcheck=Healthcheck.from_json(health) if isinstance(health, dict) else None,
            shell=strings("Shell"),
            on_build=strings("OnBuild") or (),
            args_escaped=bool(obj.get("ArgsEscaped")),
        )


@dataclass(frozen=True)
class HistoryEntry:
    created: str = ""
    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False
    author: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        if self.created_by:
            out["created_by"] = self.created_by
        if self.author:
            out["author"] = self.author
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> HistoryEntry:
        return cls(
            created=str(obj.get("created") or ""),
            created_by=str(obj.get("created_by") or ""),
            comment=str(obj.get("comment") or ""),
            empty_layer=bool(obj.get("empty_layer")),
            author=str(obj.get("author") or ""),
        )


@dataclass(frozen=True)
class ImageConfig:
    platform: Platform
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    created: str = ""
    author: str = ""
    # Other top-level keys, as (key, JSON text): an inline build cache, for one.
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        obj = canonical.loads_object(data, "image config")
        rootfs = obj.get("rootfs") or {"type": "layers", "diff_ids": []}
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids", []), list):
            raise InvalidArgument("malformed image config: rootfs.diff_ids must be a list")
        history = obj.get("history") or []
        if not isinstance(history, list):
            raise InvalidArgument("malformed image config: history must be a list")
        runtime = obj.get("config") or {}
        if not isinstance(runtime, dict):
            raise InvalidArgument("malformed image config: config must be an object")
        return cls(
            platform=Platform.from_json(obj),
            config=RuntimeConfig.from_json(runtime),
            diff_ids=tuple(Digest.parse(str(d)) for d in rootfs.get("diff_ids", [])),
            history=tuple(HistoryEntry.from_json(h) for h in history if isinstance(h, dict)),
            created=str(obj.get("created") or ""),
            author=str(obj.get("author") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = self.platform.to_json()
        out["config"] = self.config.to_json()
        out["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in self.diff_ids]}
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        if self.created:
            out["created"] = self.created
        if self.author:
            out["author"] = self.author
        for key, text in self.extra:
            out[key] = json.loads(text)
        return out

    def encode(self) -> bytes:
        return canonical.dumps(self.to_json())


def parse_time(text: str) -> float | None:
    """An RFC 3339 time as image configs hold it (Go writes nanoseconds), or None."""
    if not text:
        return None
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def source_date_epoch(value: str) -> int:
    """A SOURCE_DATE_EPOCH value: a non-negative integer count of seconds since 1970
    (reproducible-builds.org's definition)."""
    text = value.strip()
    if not text.isdigit():
        raise InvalidArgument(
            f"invalid SOURCE_DATE_EPOCH {value!r}",
            hint="SOURCE_DATE_EPOCH is a count of seconds, such as $(git log -1 --pretty=%ct)",
        )
    return int(text)
