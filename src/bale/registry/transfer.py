"""What pulls and pushes share: progress events, parallel transfers, source labels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

from bale.errors import BaleError, RegistryError
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.reference import Reference
from bale.registry.client import RemoteDocument, Repository
from bale.registry.transport import Registries
from bale.store.local import Store

# containerd's label: which repositories of a registry are known to hold a blob.
SOURCE_LABEL = "containerd.io/distribution.source."

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a blob's transfer; `action` is one of ACTIONS."""

    action: str
    digest: Digest
    size: int
    done: int = 0


ACTIONS = ("exists", "mounted", "started", "bytes", "done")

Progress = Callable[[ProgressEvent], None]


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """Run `fn` over items on a thread pool; the first failure cancels what has not started."""
    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures: list[Future[R]] = [pool.submit(fn, item) for item in items]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                for other in pending:
                    other.cancel()
                raise future.exception()  # type: ignore[misc]
        return [f.result() for f in futures]


def source_repositories(store: Store, digest: Digest, domain: str) -> list[str]:
    value = store.meta.labels(str(digest)).get(SOURCE_LABEL + domain, "")
    return [r for r in value.split(",") if r]


def add_source(store: Store, digests: Iterable[Digest], domain: str, repository: str) -> None:
    for digest in dict.fromkeys(digests):
        known = source_repositories(store, digest, domain)
        if repository not in known:
            value = ",".join([*known, repository])
            store.meta.set_label(str(digest), SOURCE_LABEL + domain, value)


def pull_repositories(registries: Registries, ref: Reference) -> list[Repository]:
    """Mirrors first (as configured), then the registry the reference names."""
    hosts = [*registries.options.hosts.mirrors(ref.domain), ref.domain]
    return [Repository(registries.session(host), ref.path) for host in dict.fromkeys(hosts)]


def resolve(registries: Registries, ref: Reference) -> tuple[Repository, RemoteDocument]:
    """Fetch what a reference names (digest over tag), from a mirror or the registry."""
    reference = str(ref.digest) if ref.digest is not None else ref.tag or "latest"
    repos = pull_repositories(registries, ref)
    for repo in repos[:-1]:
        try:
            return repo, repo.get_manifest(reference)
        except BaleError:
            continue  # a failing mirror falls back to the next, as containerd's resolver does
    repo = repos[-1]
    return repo, repo.get_manifest(reference)


def byte_progress(progress: Progress | None, desc: Descriptor) -> Callable[[int], None]:
    """Report a transfer's start, then its running byte count as chunks arrive."""
    if progress is not None:
        progress(ProgressEvent("started", desc.digest, desc.size))
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(ProgressEvent("bytes", desc.digest, desc.size, done))

    return on_bytes


def discard_created(store: Store, digests: Iterable[Digest], lease_id: str) -> None:
    """Remove blobs a failed transfer created, unless something else took them up meanwhile."""
    store.discard_unreferenced(digests, lease_id)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise RegistryError(message)
