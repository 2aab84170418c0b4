"""Platforms (`os/arch[/variant]`), normalized and matched like containerd's `platforms`."""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass, field
from typing import Any

from bale.errors import InvalidArgument

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", ""),
    "i486": ("386", ""),
    "i586": ("386", ""),
    "i686": ("386", ""),
    "386": ("386", ""),
    "ppc64el": ("ppc64le", ""),
}
_OS_ALIASES = {"macos": "darwin"}


def _normalize(os: str, arch: str, variant: str) -> tuple[str, str, str]:
    os = os.lower()
    os = _OS_ALIASES.get(os, os)
    arch = arch.lower()
    variant = variant.lower()
    alias = _ARCH_ALIASES.get(arch)
    if alias is not None:
        arch, implied = alias
        variant = variant or implied
    if arch == "arm64" and variant in ("8", "v8"):
        variant = ""
    elif arch == "arm":
        if variant == "":
            variant = "v7"
        elif variant in ("5", "6", "7", "8"):
            variant = "v" + variant
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return os, arch, variant


@dataclass(frozen=True)
class Platform:
    """A normalized platform. Construct with `Platform.parse` or `Platform.of`."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = field(default="", compare=True)
    os_features: tuple[str, ...] = ()

    @classmethod
    def of(cls, os: str, architecture: str, variant: str = "") -> Platform:
        return cls(*_normalize(os, architecture, variant))

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse `linux/arm64`, `linux/arm/v7`, `arm64` (os defaults to linux), `local`."""
        text = text.strip()
        if text in ("local", ""):
            if text == "":
                raise InvalidArgument("empty platform", hint="a platform looks like linux/arm64")
            return host_platform()
        parts = text.split("/")
        if len(parts) > 3 or any(p == "" for p in parts):
            raise InvalidArgument(
                f"invalid platform {text!r}",
                hint="a platform looks like linux/arm64 or linux/arm/v7",
            )
        if len(parts) == 1:
            # A bare word is an architecture (as containerd reads it) unless it names an OS.
            word = parts[0].lower()
            if word in ("linux", "windows", "darwin", "freebsd"):
                host = host_platform()
                return cls.of(word, host.architecture, host.variant)
            parts = ["linux", word]
        os, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) == 3 else ""
        result = cls.of(os, arch, variant)
        if not result.architecture.replace("_", "").isalnum():
            raise InvalidArgument(f"invalid platform {text!r}: bad architecture")
        return result

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Platform:
        os = obj.get("os")
        arch = obj.get("architecture")
        if not isinstance(os, str) or not isinstance(arch, str):
            raise InvalidArgument("platform object needs string 'os' and 'architecture'")
        variant = obj.get("variant") or ""
        os_version = obj.get("os.version") or ""
        features = obj.get("os.features") or []
        if not isinstance(features, list):
            raise InvalidArgument("platform 'os.features' must be a list")
        norm = _normalize(os, arch, str(variant))
        return cls(norm[0], norm[1], norm[2], str(os_version), tuple(str(f) for f in features))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @property
    def dirname(self) -> str:
        """The name buildx gives this platform's output directory (`linux_arm_v7`)."""
        return str(self).replace("/", "_")

    def compatible(self) -> tuple[Platform, ...]:
        """This platform and those it can also run, best first (containerd's vector)."""
        vector: list[Platform] = [self]
        arch, variant = self.architecture, self.variant
        if arch == "amd64":
            level = _variant_number(variant)
            for lower in range(level - 1, 0, -1):
                vector.append(Platform(self.os, "amd64", "" if lower == 1 else f"v{lower}"))
            vector.append(Platform(self.os, "386"))
        elif arch == "arm":
            level = _variant_number(variant)
            for lower in range(level - 1, 4, -1):
                vector.append(Platform(self.os, "arm", f"v{lower}"))
        elif arch == "arm64":
            vector.extend(Platform(self.os, "arm", "v7").compatible())
        return tuple(vector)

    def matches(self, other: Platform) -> bool:
        """True when an image built for `other` runs on this platform."""
        return any(
            p.os == other.os and p.architecture == other.architecture and p.variant == other.variant
            for p in self.compatible()
        )

    def rank(self, other: Platform) -> int | None:
        """Preference of `other` for this platform: 0 best; None when it does not match."""
        for i, p in enumerate(self.compatible()):
            if (p.os, p.architecture, p.variant) == (other.os, other.architecture, other.variant):
                return i
        return None

    def sort_key(self) -> tuple[str, str, str]:
        return (self.os, self.architecture, self.variant)


def _variant_number(variant: str) -> int:
    try:
        return int(variant.lstrip("v")) if variant else 1
    except ValueError:
        return 1


# GOOS/GOARCH values images are built for (Go's list, as containerd and BuildKit accept them).
KNOWN_OS = frozenset(
    {
        "linux",
        "windows",
        "darwin",
        "freebsd",
        "netbsd",
        "openbsd",
        "solaris",
        "illumos",
        "aix",
        "plan9",
        "wasip1",
        "wasi",  # what Docker's wasm support names (--platform wasi/wasm)
        "js",
    }
)
KNOWN_ARCHITECTURES = frozenset(
    {
        "386",
        "amd64",
        "arm",
        "arm64",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
        "sparc64",
        "wasm",
    }
)


def require_known(platform: Platform) -> Platform:
    """A build target must name an OS and architecture images exist for."""
    if platform.os not in KNOWN_OS:
        raise InvalidArgument(
            f"unknown operating system {platform.os!r} in platform {platform}",
            hint="a platform looks like linux/amd64, linux/arm64 or linux/arm/v7",
        )
    if platform.architecture not in KNOWN_ARCHITECTURES:
        raise InvalidArgument(
            f"unknown architecture {platform.architecture!r} in platform {platform}",
            hint="known: " + ", ".join(sorted(KNOWN_ARCHITECTURES)),
        )
    return platform


def host_platform() -> Platform:
    """The platform of the running kernel."""
    return Platform.of("linux", _host.machine())
