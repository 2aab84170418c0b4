"""The build cache travels: `--cache-to` / `--cache-from` in buildx's syntax, to and from a
registry, an OCI layout directory, or the image itself (inline). See docs/cache.md.

    spec     the flags, parsed and checked before any step
    format   the cache config: what is stored (records, layers, cache mounts) and merging
    store    reading and writing a cache in a registry or a layout directory
    imports  imported caches as a source of step results, first hit wins
    mounts   RUN --mount=type=cache contents as blobs
"""
