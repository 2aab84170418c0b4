"""Image references with Docker's normalization (`app:1` → `docker.io/library/app:1`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bale.errors import InvalidArgument
from bale.oci.digest import Digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A normalized reference: domain, repository path, and a tag and/or a digest."""

    domain: str
    path: str
    tag: str = ""
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: bool = True) -> Reference:
        original = text
        if not text:
            raise InvalidArgument("invalid reference format: empty reference")
        digest: Digest | None = None
        if "@" in text:
            text, _, digest_text = text.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except InvalidArgument as exc:
                raise InvalidArgument(f"invalid reference {original!r}: {exc.message}") from None
        name, tag = text, ""
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise InvalidArgument(
                    f"invalid reference format: invalid tag {tag!r} in {original!r}",
                    hint="a tag has up to 128 letters, digits, '_', '.' and '-'",
                )
        domain, path = _split_domain(name, original)
        if not _PATH.fullmatch(path):
            if path.lower() != path and _PATH.fullmatch(path.lower()):
                raise InvalidArgument(
                    f"invalid reference format: repository name ({path}) must be lowercase"
                )
            raise InvalidArgument(
                f"invalid reference format: {original!r}",
                hint="a reference looks like registry.example.com:5000/team/app:1.0",
            )
        if len(domain) + 1 + len(path) > _MAX_NAME:
            raise InvalidArgument(f"invalid reference {original!r}: repository name too long")
        if not tag and digest is None and default_tag:
            tag = DEFAULT_TAG
        return cls(domain, path, tag, digest)

    @property
    def name(self) -> str:
        """`docker.io/library/app` — the repository without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """`app` — the repository as Docker shows it."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
            path = path[len(OFFICIAL_PREFIX) :]
        return path

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        text = self.familiar_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: Digest) -> Reference:
        return Reference(self.domain, self.path, "", digest)


def _split_domain(name: str, original: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first.lower() != first):
        if not _DOMAIN_RE.fullmatch(first):
            raise InvalidArgument(f"invalid reference format: bad registry host in {original!r}")
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def normalize(text: str) -> str:
    """The full normalized form of a reference string."""
    return str(Reference.parse(text))
