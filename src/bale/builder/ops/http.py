"""ADD <url>: a URL's bytes, fetched once per build when the step's cache key is computed
(its content is part of the key), verified against --checksum."""

from __future__ import annotations

import email.utils
import hashlib
import posixpath
import threading
import urllib.parse

from bale.errors import InvalidArgument
from bale.frontends.graph import InlineFile, UrlSource


class Downloads:
    """The URLs of one build, each fetched at most once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[UrlSource, InlineFile] = {}

    def get(self, source: UrlSource) -> InlineFile:
        with self._lock:
            found = self._files.get(source)
        if found is None:
            name, data, mtime = download(source.url, source.checksum)
            found = InlineFile(name, data, 0o600, mtime)
            with self._lock:
                self._files[source] = found
        return found

    def fetched(self, source: UrlSource) -> InlineFile | None:
        """What `get` brought for `source`, if it was asked for in this build."""
        with self._lock:
            return self._files.get(source)


def download(url: str, checksum: str) -> tuple[str, bytes, float | None]:
    """The file's name (the URL path's last part, else `__unnamed__`, as BuildKit), its
    verified bytes and the server's Last-Modified time."""
    import httpx

    try:
        response = httpx.get(url, follow_redirects=True, timeout=120.0)
    except httpx.HTTPError as exc:
        raise InvalidArgument(f"failed to load cache key: {url}: {exc}") from None
    if response.status_code != 200:
        raise InvalidArgument(
            f"failed to load cache key: invalid response status {response.status_code} for {url}"
        )
    data = response.content
    if checksum:
        algorithm, _, expected = checksum.partition(":")
        if algorithm not in ("sha256", "sha384", "sha512") or not expected:
            raise InvalidArgument(f"unsupported --checksum {checksum!r}", hint="use sha256:<hex>")
        actual = hashlib.new(algorithm, data).hexdigest()
        if actual != expected:
            raise InvalidArgument(
                f"digest mismatch for {url}: expected {checksum}, got {algorithm}:{actual}"
            )
    name = posixpath.basename(urllib.parse.urlsplit(url).path.rstrip("/")) or "__unnamed__"
    return name, data, _last_modified(response.headers.get("last-modified"))


def _last_modified(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return None
