"""Instruction flags (`--from=x`, `--link`, repeated `--mount`), parsed like BuildKit's BFlags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# kind: "string", "bool" or "strings" (repeatable)
FLAGS: dict[str, dict[str, str]] = {
    "from": {"platform": "string"},
    "run": {"mount": "strings", "network": "string", "security": "string"},
    "copy": {
        "from": "string",
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "parents": "bool",
        "exclude": "strings",
    },
    "add": {
        "chown": "string",
        "chmod": "string",
        "link": "bool",
        "keep-git-dir": "bool",
        "checksum": "string",
        "exclude": "strings",
        "unpack": "bool",
    },
    "healthcheck": {
        "interval": "string",
        "timeout": "string",
        "start-period": "string",
        "start-interval": "string",
        "retries": "string",
    },
}


class FlagError(Exception):
    pass


@dataclass(frozen=True)
class Flags:
    strings: dict[str, str] = field(default_factory=dict)
    bools: dict[str, bool] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def string(self, name: str) -> str | None:
        return self.strings.get(name)

    def flag(self, name: str) -> bool:
        return self.bools.get(name, False)

    def many(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())


_NONE = Flags()


def parse_flags(keyword: str, words: Sequence[str]) -> Flags:
    if not words:
        return _NONE
    known = FLAGS.get(keyword, {})
    strings: dict[str, str] = {}
    bools: dict[str, bool] = {}
    lists: dict[str, list[str]] = {}
    seen: set[str] = set()
    for word in words:
        if word == "--":
            break  # the end of the flags, as POSIX utilities
        if not word.startswith("--"):
            raise FlagError(f"arg should start with -- : {word}")
        flag, has_value, value = word.partition("=")
        name = flag[2:]
        kind = known.get(name)
        if kind is None:
            from bale.frontends.dockerfile.parser import suggest

            raise FlagError(
                f"unknown flag: {flag}{suggest(name, sorted(known), case_sensitive=True)}"
            )
        if kind != "strings":
            if name in seen:
                raise FlagError(f"duplicate flag specified: {flag}")
            seen.add(name)
        if kind == "bool":
            if has_value and value == "":
                raise FlagError(f"missing a value on flag: {flag}")
            if value.lower() in ("true", "", "false"):
                bools[name] = value.lower() != "false"
            else:
                raise FlagError(f"expecting boolean value for flag {flag}, not: {value}")
        elif not has_value:
            raise FlagError(f"missing a value on flag: {flag}")
        elif kind == "string":
            strings[name] = value
        else:
            lists.setdefault(name, []).append(value)
    return Flags(strings, bools, {k: tuple(v) for k, v in lists.items()})
