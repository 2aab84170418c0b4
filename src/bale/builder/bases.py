"""Base images for a build: from the local store, else their registry (documents at once,
layers only when a step needs the filesystem), and the named contexts that stand for images.

`StoreBases` is what the frontend asks (`image`, `base_config`) and one of the sources the
solver asks for the layers a state needs (`Fetchers`).
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bale.builder.state import LayerRef
from bale.errors import BaleError, InvalidArgument, NotFound
from bale.frontends.graph import ResolvedImage
from bale.oci.config import RuntimeConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.platform import Platform
from bale.oci.reference import Reference
from bale.store.archive_load import load_archive
from bale.store.bases import BaseImage, local_base
from bale.store.copy import copy_image
from bale.store.local import Lease, Store

if TYPE_CHECKING:
    from bale.registry.transport import Registries


class LayerFetcher(Protocol):
    """Brings the blobs of layers that are not in the store yet (a pulled base's)."""

    def fetch_missing(self, layers: Sequence[LayerRef]) -> None: ...


class BlobSource(Protocol):
    """Something that can bring a blob the store lacks: a base's registry, an imported
    cache."""

    def provides(self, digest: Digest) -> bool: ...

    def fetch(self, digest: Digest) -> None: ...


class Fetchers:
    """Missing layers from whichever source knows them, in order."""

    def __init__(self, store: Store, sources: Sequence[BlobSource]) -> None:
        self._store = store
        self._sources = list(sources)

    def fetch_missing(self, layers: Sequence[LayerRef]) -> None:
        for layer in layers:
            digest = layer.descriptor.digest
            if self._store.content.exists(digest):
                continue
            source = next((s for s in self._sources if s.provides(digest)), None)
            if source is None:
                raise NotFound(f"layer {digest} is not in the store, and no source has it")
            source.fetch(digest)


class StoreBases:
    def __init__(
        self,
        store: Store,
        registries: Callable[[], Registries] | None,
        lease: Lease | None = None,
        pull: bool = False,
        seed: Store | None = None,
    ) -> None:
        self.store = store
        self._registries = registries
        self.lease = lease
        self.pull = pull
        # A store to copy a base from when `store` lacks it (a fresh store made to check
        # that a build is reproducible starts with no image of its own).
        self.seed = seed
        self.found: dict[tuple[str, str], BaseImage] = {}
        # Named contexts standing for images: FROM NAME / COPY --from=NAME use their image.
        self.aliases: dict[str, str] = {}
        # (ref, platform pulled, platform asked for) of bases used for another platform
        self.mismatched: list[tuple[str, str, str]] = []
        # Layer blob digest → how to bring the blobs of the image it belongs to.
        self._fetchers: dict[Digest, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()

    # -- what the frontend asks -------------------------------------------------------------

    def image(self, ref: str, platform: Platform) -> ResolvedImage:
        base = self.get(ref, platform)
        return ResolvedImage(
            ref=self.aliases.get(ref, ref),
            manifest=base.manifest.digest,
            config=base.config,
            resolved=str(base.resolved.digest),
        )

    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None:
        return self.get(ref, platform).config.config

    def get(self, ref: str, platform: Platform) -> BaseImage:
        ref = self.aliases.get(ref, ref)
        key = (ref, str(platform))
        with self._lock:
            found = self.found.get(key)
        if found is None:
            found = self._load(ref, platform)
            with self._lock:
                self.found[key] = found
        return found

    # -- what the solver asks ---------------------------------------------------------------

    def provides(self, digest: Digest) -> bool:
        return digest in self._fetchers

    def fetch(self, digest: Digest) -> None:
        """Layers of a pulled base arrive only now, when a step needs the filesystem."""
        with self._fetch_lock:
            if not self.store.content.exists(digest):
                self._fetchers[digest]()

    # -- resolution -------------------------------------------------------------------------

    def _load(self, ref: str, platform: Platform) -> BaseImage:
        try:
            reference = Reference.parse(ref)
            base = None if self.pull else local_base(self.store, reference, platform)
            if base is None and not self.pull and self.seed is not None:
                base = self._seeded(reference, platform)
            if base is None:
                from bale.registry.pulling import ensure_image

                base = ensure_image(
                    self.store,
                    reference,
                    platform,
                    registries=self._registries() if self._registries else None,
                    pull=self.pull,
                    lease=self.lease,
                )
        except NotFound as exc:
            raise NotFound(
                f"failed to resolve source metadata for {_full(ref)}: {exc.message}",
                hint=exc.hint or "import, load or pull the image first, or check its name",
            ) from None
        except BaleError as exc:
            local = self._local_platforms(ref)
            if local is None:
                raise exc.with_context(
                    f"failed to resolve source metadata for {_full(ref)}"
                ) from None
            raise NotFound(
                f"failed to resolve source metadata for {ref}: the local image has no "
                f"{platform} (it has {', '.join(local)}) and its registry answered: "
                f"{exc.message}",
                hint="import or pull that platform, or build only for the platforms it has",
            ) from None
        if not base.exact_platform:
            # BuildKit's InvalidBaseImagePlatform: a single-platform base is used anyway.
            self.mismatched.append((ref, str(base.config.platform), str(platform)))
        manifest = self.store.manifest(base.manifest)
        missing = [d for d in manifest.layers if not self.store.content.exists(d.digest)]
        if missing and self._registries is not None:
            registries, store, lease = self._registries, self.store, self.lease
            plain = Descriptor(base.manifest.media_type, base.manifest.digest, base.manifest.size)

            def fetch() -> None:
                from bale.registry.pulling import fetch_layers

                fetch_layers(store, base.reference, plain, registries=registries(), lease=lease)

            for layer in missing:
                self._fetchers.setdefault(layer.digest, fetch)
        return base

    def _seeded(self, reference: Reference, platform: Platform) -> BaseImage | None:
        assert self.seed is not None
        found = local_base(self.seed, reference, platform)
        if found is None:
            return None
        with self._lock:
            copy_image(self.seed, self.store, str(reference), found.resolved)
        return local_base(self.store, reference, platform)

    def _local_platforms(self, ref: str) -> list[str] | None:
        try:
            target = self.store.resolve(ref)
        except BaleError:
            return None
        return [str(p) for p, _ in self.store.platform_manifests(target)]


def _full(ref: str) -> str:
    """The reference as BuildKit names it in errors (docker.io/library/name:tag)."""
    try:
        return str(Reference.parse(ref))
    except BaleError:
        return ref


def named_contexts(store: Store, contexts: dict[str, str], bases: StoreBases) -> dict[str, Path]:
    """Apply --build-context: images become aliases of `bases`; directories are returned."""
    dirs: dict[str, Path] = {}
    for name, value in contexts.items():
        if value == "docker-image://scratch":
            continue  # the empty image: nothing to look up (the Dockerfile uses scratch)
        if value.startswith("docker-image://"):
            bases.aliases[name] = value.removeprefix("docker-image://")
        elif value.startswith("oci-layout://"):
            bases.aliases[name] = load_layout_image(store, value.removeprefix("oci-layout://"))
        elif "://" in value:
            raise InvalidArgument(
                f"--build-context {name}={value}: unsupported source",
                hint="use a directory, docker-image://REF or oci-layout://PATH[:TAG]",
            )
        else:
            path = Path(value)
            if not path.is_dir():
                raise InvalidArgument(f"--build-context {name}: {value} is not a directory")
            dirs[name] = path
    return dirs


def load_layout_image(store: Store, spec: str) -> str:
    """Import the image an OCI layout directory names (`PATH[:TAG]`, or `PATH@sha256:…`) and
    return a reference to it in the store."""
    path, _, selector = spec.partition("@")
    if not selector and ":" in Path(path).name:
        path, _, selector = path.rpartition(":")
    root = Path(path)
    if not (root / "index.json").is_file():
        raise InvalidArgument(f"oci-layout://{spec}: no index.json in {path}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=".", recursive=True)
    buffer.seek(0)
    loaded = load_archive(store, buffer)
    for item in loaded:
        tag = item.name.rsplit(":", 1)[-1] if item.name else ""
        if not selector or selector in (tag, str(item.target.digest)):
            # By digest: the content is in the store, the reference needs no name there.
            return f"bale-build-context@{item.target.digest}"
    raise NotFound(f"oci-layout://{spec}: no image tagged {selector!r} in the layout")
