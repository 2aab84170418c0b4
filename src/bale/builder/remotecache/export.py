"""Writing a build's cache where `--cache-to` says: mode=min the steps whose layers make each
platform's image, mode=max every step solved; cache mounts when asked. Merged with what is
there, never replacing it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bale.builder.bases import LayerFetcher
from bale.builder.remotecache.format import INLINE_KEY, CacheConfig, MountBlob, Record
from bale.builder.remotecache.mounts import export_mount
from bale.builder.remotecache.spec import CacheSpec
from bale.builder.remotecache.store import combine_with, location_for
from bale.builder.result import BuildResult, PlatformResult, StepRecord
from bale.errors import BaleError
from bale.store.local import Lease, Store

if TYPE_CHECKING:
    from bale.registry.transport import Registries


def records_for(result: BuildResult, mode: str) -> list[StepRecord]:
    if mode == "max":
        return list(result.steps)
    out: dict[str, StepRecord] = {}
    for platform in result.platforms:
        for record in result.chain(platform.vertex):
            out.setdefault(record.vertex, record)
    return list(out.values())


def inline_cache_config(result: BuildResult, platform: PlatformResult) -> tuple[tuple[str, str]]:
    """The inline cache of one platform's image (mode=min): a key and its JSON text."""
    now = time.time()
    records = tuple(Record(s.key, s.layer, s.created, now) for s in result.chain(platform.vertex))
    return ((INLINE_KEY, CacheConfig(records).encode().decode()),)


def export_caches(
    store: Store,
    result: BuildResult,
    specs: Sequence[CacheSpec],
    *,
    lease: Lease,
    fetcher: LayerFetcher,
    registries: Callable[[], Registries],
    mount_ids: Sequence[str],
    warn: Callable[[str], None],
) -> None:
    for spec in specs:
        if spec.kind == "inline":
            continue  # written into the image config by the image exporter
        try:
            _export(store, result, spec, lease, fetcher, registries, mount_ids)
        except BaleError as exc:
            if not spec.ignore_error:
                raise exc.with_context(f"exporting the cache to {spec.describe()}") from None
            warn(f"cache export to {spec.describe()} failed (ignore-error=true): {exc}")


def _export(
    store: Store,
    result: BuildResult,
    spec: CacheSpec,
    lease: Lease,
    fetcher: LayerFetcher,
    registries: Callable[[], Registries],
    mount_ids: Sequence[str],
) -> None:
    now = time.time()
    steps = records_for(result, spec.mode)
    fetcher.fetch_missing([s.layer for s in steps if s.layer is not None])
    records = tuple(Record(s.key, s.layer, s.created, now) for s in steps)
    mounts = []
    for mount_id in mount_ids:
        if spec.exports_mount(mount_id):
            blob = export_mount(store, mount_id, lease)
            if blob is not None:
                mounts.append(MountBlob(mount_id, blob, now))
    location = location_for(spec.kind, spec.ref, spec.path, spec.tag, registries)
    location.write(
        store,
        CacheConfig(records, tuple(mounts)),
        lease,
        combine_with(spec.max_age, spec.max_records),
    )
