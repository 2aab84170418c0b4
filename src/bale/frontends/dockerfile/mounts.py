"""`RUN --mount=...` specifications, validated with BuildKit's rules (runmount.go)."""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING = ("shared", "private", "locked")
_KEYS = (
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "required",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
    "size",
    "env",
)


class MountError(Exception):
    pass


@dataclass(frozen=True)
class Mount:
    """One mount for a RUN step. `source` is relative to `from_` (a stage, an image, or the
    build context when empty). For cache mounts `id` defaults to the target; for secrets the
    id defaults to the target's basename and the target to /run/secrets/<id>."""

    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int | None = None
    env: str = ""


_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def parse_size(text: str) -> int:
    """Docker's RAMInBytes: `64m`, `1g`, `512KiB`, `4096` (powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"invalid size: '{text}'")
    unit = (match.group(2) or "").lower()
    size = float(match.group(1)) * 1024 ** ("kmgtp".find(unit) + 1 if unit else 0)
    if size >= 2**63:  # Docker's int64; also what a float too big to hold becomes (inf)
        raise ValueError(f"invalid size: '{text}': value out of range")
    return int(size)


def _bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _uint(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise MountError(f"invalid value {value} for {key}") from None
    if number < 0 or number >= 2**32:
        raise MountError(f"invalid value {value} for {key}")
    return number


def parse_mount(spec: str, expand: Callable[[str], str] | None = None, index: int = 0) -> Mount:
    """Parse one `--mount` value; `expand` applies build args to each value as BuildKit does."""
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error as exc:
        raise MountError(f"invalid mount {spec!r}: {exc}") from None
    values: dict[str, object] = {"type": "bind"}
    ro_auto = True
    for item in fields:
        key, has_value, value = item.partition("=")
        key = key.lower()
        mount_type = values["type"]
        if not has_value:
            if key in ("readonly", "ro"):
                values["readonly"], ro_auto = True, False
            elif key in ("readwrite", "rw"):
                values["readonly"], ro_auto = False, False
            elif key == "required" and mount_type in ("secret", "ssh"):
                values["required"] = True
            elif key == "required":
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            else:
                raise MountError(f"invalid field '{item}' must be a key=value pair")
            continue
        if expand is not None:
            value = expand(value)
        if key == "type":
            if value.lower() not in MOUNT_TYPES:
                from bale.frontends.dockerfile.parser import suggest

                raise MountError(f'unsupported mount type "{value}"{suggest(value, MOUNT_TYPES)}')
            values["type"] = value.lower()
        elif key == "from":
            values["from_"] = value
        elif key in ("source", "src"):
            values["source"] = value
        elif key in ("target", "dst", "destination"):
            values["target"] = value
        elif key in ("readonly", "ro"):
            values["readonly"], ro_auto = _bool(key, value), False
        elif key in ("readwrite", "rw"):
            values["readonly"], ro_auto = not _bool(key, value), False
        elif key == "required":
            if mount_type not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            values["required"] = _bool(key, value)
        elif key == "id":
            values["id"] = value
        elif key == "sharing":
            if value.lower() not in SHARING:
                raise MountError(f'unsupported sharing value "{value}"')
            values["sharing"] = value.lower()
        elif key == "mode":
            values["mode"] = _uint(key, value, 8)
        elif key in ("uid", "gid"):
            values[key] = _uint(key, value, 10)
        elif key == "size":
            if mount_type != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            try:
                values["size"] = parse_size(value)
            except ValueError as exc:
                raise MountError(str(exc)) from None
        elif key == "env":
            if mount_type != "secret":
                raise MountError(f"unexpected key '{key}' for mount type '{mount_type}'")
            values["env"] = value
        else:
            from bale.frontends.dockerfile.parser import suggest

            raise MountError(f"unexpected key '{key}' in '{item}'{suggest(key, _KEYS)}")
    mtype = str(values["type"])
    if mtype not in ("secret", "ssh", "cache"):
        for key in ("mode", "uid", "gid"):
            if key in values:
                raise MountError(f'{key} not allowed for "{mtype}" type mounts')
    if ro_auto:
        values["readonly"] = mtype not in ("cache", "tmpfs")
    if "sharing" in values and mtype != "cache":
        raise MountError(f"invalid cache sharing set for {mtype} mount")
    if mtype in ("secret", "ssh"):
        if values.get("from_"):
            raise MountError(f"{mtype} mount should not have a from")
        if values.get("source"):
            raise MountError(f"{mtype} mount should not have a source")
    if mtype == "tmpfs" and values.get("from_"):
        raise MountError("tmpfs mount should not have a from")
    if mtype == "secret":
        target, ident = str(values.get("target", "")), str(values.get("id", ""))
        if not ident:
            if not target:
                if not values.get("env"):
                    raise MountError("secret mount requires an id or a target")
            else:
                values["id"] = posixpath.basename(target)
        if not target and not values.get("env"):
            values["target"] = "/run/secrets/" + str(values["id"])
    elif mtype == "ssh":
        values.setdefault("id", "default")
        if not values.get("target"):
            values["target"] = f"/run/buildkit/ssh_agent.{index}"
    elif not values.get("target"):
        raise MountError(f"mount type {mtype} requires a target")
    if mtype == "cache" and not values.get("id"):
        values["id"] = values["target"]
    return Mount(**values)  # type: ignore[arg-type]


def parse_mount_as_written(spec: str, index: int = 0) -> Mount:
    """A `--mount` value at parse time, before build args and ENV are known: `from` cannot
    use a variable; a value that does is checked once expanded (BuildKit defers them all)."""
    try:
        fields = next(csv.reader([spec]), [])
    except csv.Error:
        fields = []
    for item in fields:
        key, _, value = item.partition("=")
        if key.lower() == "from" and "$" in value[:-1]:
            raise MountError(
                "'from' doesn't support variable expansion, define alias stage instead"
            )
    try:
        return parse_mount(spec, None, index)
    except MountError:
        if "$" not in spec:
            raise
        return Mount()
