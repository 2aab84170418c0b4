"""Distribution API operations on one repository: manifests, blobs and uploads."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

import httpx

from bale.errors import AlreadyExists, BaleError, DigestMismatch, InvalidArgument, RegistryError
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import sniff_media_type
from bale.registry.auth import Scope
from bale.registry.deadline import Budget
from bale.registry.errors import response_error, transport_error
from bale.registry.transport import RETRYABLE, Session, raw_chunks, read_body
from bale.store.content import ContentStore

MANIFEST_TYPES = (
    mediatype.OCI_INDEX,
    mediatype.DOCKER_MANIFEST_LIST,
    mediatype.OCI_MANIFEST,
    mediatype.DOCKER_MANIFEST,
)
ACCEPT = ", ".join(MANIFEST_TYPES)
# containerd's limit: manifests, indexes and configs read into memory.
MAX_MANIFEST = 4 << 20
# Blobs read into memory up to this size are small requests (bounded by `timeout`).
SMALL_BLOB = 1 << 20


T = TypeVar("T")


def parse_remote(parse: Callable[[bytes], T], data: bytes, where: str) -> T:
    """A document from a registry parsed; a malformed one is a RegistryError naming it."""
    try:
        return parse(data)
    except InvalidArgument as exc:
        raise RegistryError(
            f"{where}: {exc.message}", hint="the registry serves a malformed document"
        ) from None


@dataclass(frozen=True)
class RemoteDocument:
    """A manifest or index as the registry sent it: exact bytes and their descriptor."""

    descriptor: Descriptor
    data: bytes


class Repository:
    def __init__(self, session: Session, path: str, *, push: bool = False) -> None:
        self.session = session
        self.path = path
        self.scopes = (Scope.push(path) if push else Scope.pull(path),)

    @property
    def domain(self) -> str:
        return self.session.domain

    def __str__(self) -> str:
        return f"{self.session.domain}/{self.path}"

    def _url(self, kind: str, reference: str) -> str:
        return f"/v2/{self.path}/{kind}/{reference}"

    # -- manifests -----------------------------------------------------------------------

    def get_manifest(self, reference: str, expected: Descriptor | None = None) -> RemoteDocument:
        """Fetch by tag or digest; verify the bytes against the digest and the content type."""
        what = (
            f"fetch manifest {self}:{reference}"
            if ":" not in reference
            else (f"fetch manifest {self}@{reference}")
        )
        if expected is not None and expected.size > MAX_MANIFEST:
            raise RegistryError(
                f"{what}: the index says it is {expected.size} bytes, more than the "
                f"{MAX_MANIFEST >> 20} MiB a manifest may have"
            )
        with self.session.operation(what):
            response = self.session.request(
                "GET",
                self._url("manifests", reference),
                scopes=self.scopes,
                what=what,
                headers={"Accept": ACCEPT},
                stream=True,
            )
            if response.status_code != 200:
                raise response_error(response, what, self.domain)
            data = read_body(response, MAX_MANIFEST, what, self.domain)
        media_type = _manifest_media_type(response, data, what)
        digest = Digest.of(data)
        if reference.startswith("sha") and ":" in reference:
            wanted = Digest.parse(reference)
            actual = Digest.of(data, wanted.algorithm)
            if actual != wanted:
                raise RegistryError(
                    f"{what}: the registry sent content with digest {actual}, not {wanted}",
                    code="DIGEST_INVALID",
                    hint="the registry or a proxy in between is serving wrong content",
                )
            digest = actual
        header = response.headers.get("docker-content-digest", "")
        if header and header != str(digest) and header.startswith(digest.algorithm + ":"):
            raise RegistryError(
                f"{what}: Docker-Content-Digest {header} does not match the content ({digest})",
                code="DIGEST_INVALID",
            )
        if expected is not None:
            if expected.size != len(data):
                raise RegistryError(
                    f"{what}: {len(data)} bytes, but the index says {expected.size}",
                    code="SIZE_INVALID",
                )
            if mediatype.to_oci(expected.media_type) != mediatype.to_oci(media_type):
                raise RegistryError(
                    f"{what}: content type {media_type}, but the index says {expected.media_type}"
                )
            return RemoteDocument(expected, data)
        return RemoteDocument(Descriptor(media_type, digest, len(data)), data)

    def manifest_exists(self, digest: Digest) -> bool:
        return self._exists("manifests", str(digest), f"check manifest {self}@{digest}")

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> Digest:
        what = (
            f"push manifest {self}:{reference}"
            if ":" not in reference
            else (f"push manifest {self}@{reference}")
        )
        response = self.session.request(
            "PUT",
            self._url("manifests", reference),
            scopes=self.scopes,
            what=what,
            headers={"Content-Type": media_type},
            content=data,
        )
        if response.status_code not in (200, 201, 202):
            raise response_error(response, what, self.domain)
        digest = Digest.of(data)
        header = response.headers.get("docker-content-digest", "")
        if header and header != str(digest):
            raise RegistryError(f"{what}: the registry stored {header}, expected {digest}")
        return digest

    # -- blobs ---------------------------------------------------------------------------

    def blob_exists(self, digest: Digest) -> bool:
        return self._exists("blobs", str(digest), f"check blob {self}@{digest}")

    def _exists(self, kind: str, reference: str, what: str) -> bool:
        headers = {"Accept": ACCEPT} if kind == "manifests" else None
        response = self.session.request(
            "HEAD", self._url(kind, reference), scopes=self.scopes, what=what, headers=headers
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise response_error(response, what, self.domain)

    def open_blob(self, desc: Descriptor) -> httpx.Response:
        """A streaming response for a blob (status checked); close it after reading.

        Call it under an operation's budget (`session.operation(what, "blob")`), which then
        bounds the reading of the body too.
        """
        what = f"fetch blob {self}@{desc.digest}"
        response = self.session.request(
            "GET",
            self._url("blobs", str(desc.digest)),
            scopes=self.scopes,
            what=what,
            stream=True,
        )
        if response.status_code != 200:
            raise response_error(response, what, self.domain)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) != desc.size:
            response.close()
            raise RegistryError(
                f"{what}: the registry offers {length} bytes, the descriptor says {desc.size}",
                code="SIZE_INVALID",
            )
        return response

    def iter_blob(self, desc: Descriptor) -> Iterator[bytes]:
        """A blob's bytes as they arrive, never more than `desc.size` (one byte over fails).

        Call it under an operation's budget. Raises httpx errors as they come (the caller
        decides about retrying) and RegistryError for content longer than declared.
        """
        what = f"fetch blob {self}@{desc.digest}"
        budget = Budget.active()
        with closing(self.open_blob(desc)) as r:
            received = 0
            for chunk in raw_chunks(r):
                received += len(chunk)
                if received > desc.size:
                    # Only the bytes up to one past the size are ever taken.
                    raise RegistryError(
                        f"{what}: rejected content that does not match its descriptor "
                        f"(more than the declared {desc.size} bytes)",
                        code="DIGEST_INVALID",
                        hint="the registry or a proxy in between is serving wrong content",
                    )
                if budget is not None:
                    budget.check()
                yield chunk

    def fetch_blob(
        self,
        content: ContentStore,
        desc: Descriptor,
        on_bytes: Callable[[int], None] | None = None,
    ) -> bool:
        """Stream a blob into the content store, verified; False when it was already there.

        A broken connection restarts the download (bounded by the retry policy and the blob
        budget); content that arrives complete but wrong is rejected at once. Nothing
        unverified is ever committed: any failure, a deadline or an interrupt aborts the
        ingest, whose data readers never see.
        """
        what = f"fetch blob {self}@{desc.digest}"
        policy = self.session.retry
        with self.session.operation(what, "blob") as budget:
            for attempt in range(policy.attempts):
                if content.exists(desc.digest):
                    return False
                ref = f"pull-{desc.digest}-{os.getpid()}-{secrets.token_hex(6)}"
                writer = content.writer(ref)
                try:
                    for chunk in self.iter_blob(desc):
                        writer.write(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                    writer.commit(desc.size, desc.digest)
                    return True
                except AlreadyExists:
                    return False
                except DigestMismatch as exc:
                    writer.abort()
                    raise RegistryError(
                        f"{what}: rejected content that does not match its descriptor "
                        f"({exc.message.removeprefix(f'ingest {ref}: ')})",
                        code="DIGEST_INVALID",
                        hint="the registry or a proxy in between is serving wrong content",
                    ) from None
                except (httpx.HTTPError, httpx.InvalidURL) as exc:
                    writer.abort()
                    delay = policy.delay(attempt)
                    retryable = isinstance(exc, RETRYABLE) and budget.can_sleep(delay)
                    if attempt + 1 >= policy.attempts or not retryable:
                        raise transport_error(exc, what, self.domain) from None
                    budget.sleep(delay)
                except BaseException:
                    writer.abort()
                    raise
        raise AssertionError("unreachable")

    def read_blob(self, desc: Descriptor, limit: int = MAX_MANIFEST) -> bytes:
        """A small blob (a config) in memory, verified."""
        what = f"fetch blob {self}@{desc.digest}"
        if desc.size > limit:
            raise RegistryError(f"{what}: {desc.size} bytes is too large to read into memory")
        # A config is a small request; a large attestation is a transfer, held to the rate.
        kind = "request" if desc.size <= SMALL_BLOB else "blob"
        try:
            with self.session.operation(what, kind):
                data = b"".join(self.iter_blob(desc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise transport_error(exc, what, self.domain) from None
        if len(data) != desc.size or Digest.of(data, desc.digest.algorithm) != desc.digest:
            raise RegistryError(
                f"{what}: rejected content that does not match its descriptor",
                code="DIGEST_INVALID",
            )
        return data

    # -- uploads -------------------------------------------------------------------------

    def mount_blob(self, digest: Digest, source: str) -> str | None:
        """Ask for a cross-repository mount. None when mounted, else an upload location."""
        what = f"mount blob {digest} from {self.domain}/{source} into {self}"
        response = self.session.request(
            "POST",
            f"/v2/{self.path}/blobs/uploads/",
            scopes=(*self.scopes, Scope.pull(source)),
            what=what,
            params={"mount": str(digest), "from": source},
        )
        if response.status_code == 201:
            return None
        if response.status_code == 202:
            return _location(response, what)
        raise response_error(response, what, self.domain)

    def start_upload(self) -> str:
        what = f"start upload to {self}"
        response = self.session.request(
            "POST", f"/v2/{self.path}/blobs/uploads/", scopes=self.scopes, what=what
        )
        if response.status_code != 202:
            raise response_error(response, what, self.domain)
        return _location(response, what)

    def upload_blob(
        self,
        desc: Descriptor,
        opener: Callable[[], BinaryIO],
        chunk_size: int,
        location: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        """Upload in one PUT when small, else PATCH chunks and a closing PUT."""
        what = f"upload blob {desc.digest} to {self}"
        final: bytes = b""
        with self.session.operation(what, "blob"):
            location = location or self.start_upload()
            with opener() as stream:
                if desc.size <= chunk_size:
                    final = stream.read()
                else:
                    offset = 0
                    while chunk := stream.read(chunk_size):
                        end = offset + len(chunk) - 1
                        response = self.session.request(
                            "PATCH",
                            location,
                            scopes=self.scopes,
                            what=what,
                            content=chunk,
                            headers={
                                "Content-Type": "application/octet-stream",
                                "Content-Range": f"{offset}-{end}",
                            },
                        )
                        if response.status_code != 202:
                            raise response_error(response, what, self.domain)
                        location = _location(response, what)
                        offset += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                    stream.read()  # the store's reader verifies the digest at EOF
            try:
                url = str(httpx.URL(location).copy_merge_params({"digest": str(desc.digest)}))
            except (httpx.InvalidURL, ValueError):
                raise RegistryError(f"{what}: invalid upload location {location!r}") from None
            if final:
                response = self._put_blob(url, final, what)
        if not final:
            # The registry may now move a large blob within its storage: no rate applies.
            with self.session.operation(what, "commit"):
                response = self._put_blob(url, final, what)
        if response.status_code != 201:
            raise response_error(response, what, self.domain)
        if final and on_bytes is not None:
            on_bytes(len(final))

    def _put_blob(self, url: str, data: bytes, what: str) -> httpx.Response:
        return self.session.request(
            "PUT",
            url,
            scopes=self.scopes,
            what=what,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )


def _location(response: httpx.Response, what: str) -> str:
    location = str(response.headers.get("location", ""))
    if not location:
        raise RegistryError(f"{what}: the registry sent no upload location")
    try:
        return str(response.url.join(location))
    except (httpx.InvalidURL, ValueError):
        raise RegistryError(f"{what}: the registry sent an invalid upload location") from None


def _manifest_media_type(response: httpx.Response, data: bytes, what: str) -> str:
    header = str(response.headers.get("content-type", "")).split(";")[0].strip()
    generic = header in ("application/json", "")
    if header not in MANIFEST_TYPES and not generic:
        raise RegistryError(
            f"{what}: unexpected content type {header or '(none)'!r} for a manifest",
            hint="the server is not speaking the registry API (a proxy or web page in between?)",
        )
    try:
        declared = sniff_media_type(data)
    except BaleError as exc:
        if generic:
            raise RegistryError(
                f"{what}: unexpected content type {header or '(none)'!r} for a manifest "
                f"({exc.message})",
                hint="the server is not speaking the registry API (a proxy in between?)",
            ) from None
        raise RegistryError(
            f"{what}: the body is not a {header} document ({exc.message})"
        ) from None
    if generic:
        # Some registries label OCI documents generically; trust only what the body declares.
        if declared in MANIFEST_TYPES:
            return declared
        raise RegistryError(
            f"{what}: unexpected content type {header or '(none)'!r} for a manifest "
            f"(the body says {declared})"
        )
    if declared != header:
        raise RegistryError(f"{what}: the body is not a {header} document (it says {declared})")
    return header
