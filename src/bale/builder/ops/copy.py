"""COPY/ADD: what a CopyOp's sources are (for its cache key) and copying them.

Sources come from a local context or, for `--from`, from the filesystem of vertex input 1,
mounted read-only. Context files land root-owned; another stage's or image's keep their
owners unless --chown says otherwise.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bale.builder.context import BuildContext, clean, entries_checksum
from bale.builder.copy_rules import apply_copy
from bale.builder.copy_tree import LayerTree
from bale.builder.ops.http import Downloads
from bale.builder.runtime import Runtime
from bale.builder.state import FsState, LayerRef
from bale.builder.users import chown_ids
from bale.frontends.dockerignore import DockerIgnore
from bale.frontends.graph import CopyOp, InlineFile

if TYPE_CHECKING:
    from bale.store.layers.tarwriter import TarEmitter


def excluder(patterns: tuple[str, ...], sources: tuple[str, ...]) -> DockerIgnoreMatch:
    """COPY --exclude: patterns match a path relative to the context and relative to the
    source directory it is copied from (`COPY --exclude=*.log dir/ /x/` skips dir/a.log)."""
    return DockerIgnoreMatch(DockerIgnore.parse("\n".join(patterns)), sources)


class DockerIgnoreMatch:
    def __init__(self, rules: DockerIgnore, sources: tuple[str, ...]) -> None:
        self._rules = rules
        # Each source as path parts (wildcards allowed: `dir*` is every directory it matches).
        self._prefixes = [clean(s).split("/") for s in sources if clean(s) != "."]

    def __call__(self, rel: str) -> bool:
        if self._rules.excluded(rel):
            return True
        parts = rel.split("/")
        return any(
            len(parts) > len(p)
            and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, p, strict=False))
            and self._rules.excluded("/".join(parts[len(p) :]))
            for p in self._prefixes
        )


def _narrowed(ctx: BuildContext, op: CopyOp) -> BuildContext:
    return ctx.narrowed(excluder(op.excludes, op.sources)) if op.excludes else ctx


def copy_content_key(
    rt: Runtime, op: CopyOp, inputs: Sequence[FsState], downloads: Downloads
) -> tuple[str, list[tuple[str, str]]]:
    """What the copy reads: the checksum of its sources (names, types, modes, contents; the
    owners too when the copy keeps them) and the digests of its URLs' files; and the entries
    behind it, (path, digest), to explain a miss."""
    parts = [f"url:{d.definition()[2]}" for d in (downloads.get(u) for u in op.urls)]
    if op.from_input:
        with rt.rootfs.view(inputs[1]) as root:
            ctx = _narrowed(BuildContext(Path(root)), op)
            entries = _entries(ctx, op, owners=not op.chown)
    else:
        entries = _entries(_narrowed(rt.env.context(op.context), op), op, owners=False)
    parts.append(entries_checksum(entries))
    return "\0".join(parts), entries


def _entries(ctx: BuildContext, op: CopyOp, *, owners: bool) -> list[tuple[str, str]]:
    return ctx.entries(ctx.sources(op.sources, parents=op.parents), owners=owners)


def run_copy(
    rt: Runtime,
    op: CopyOp,
    rootfs: str,
    inputs: Sequence[FsState],
    downloads: Downloads,
) -> None:
    """Copy into a mounted rootfs (ADD, which may extract archives there)."""
    owner = chown_ids(rootfs, op.chown)
    if owner is None and not op.from_input:
        owner = (0, 0)
    files: tuple[InlineFile, ...] = tuple(downloads.get(u) for u in op.urls)
    if op.from_input:
        with rt.rootfs.view(inputs[1]) as root:
            apply_copy(op, _narrowed(BuildContext(Path(root)), op), rootfs, owner, files)
    else:
        apply_copy(op, _narrowed(rt.env.context(op.context), op), rootfs, owner, files)


def copy_to_layer(
    rt: Runtime,
    op: CopyOp,
    inputs: Sequence[FsState],
    downloads: Downloads,
    write: Callable[[Callable[[TarEmitter], None]], LayerRef | None],
) -> LayerRef | None:
    """The copy's layer, written straight from its sources over a read-only view of the
    parent (what decides owners, existing directories and links on the way); no file is
    copied first and no snapshot is made: a later step that needs this filesystem unpacks
    the layer."""
    with contextlib.ExitStack() as stack:
        parent = stack.enter_context(rt.rootfs.view(inputs[0])) if inputs[0].layers else None
        tree = LayerTree(parent)
        owner = chown_ids(parent or "/nonexistent", op.chown)
        if owner is None and not op.from_input:
            owner = (0, 0)
        files = tuple(downloads.get(u) for u in op.urls)
        if op.from_input:
            # The source stays mounted until the layer is written: it is read from there.
            source = BuildContext(Path(stack.enter_context(rt.rootfs.view(inputs[1]))))
        else:
            source = rt.env.context(op.context)
        apply_copy(op, _narrowed(source, op), tree, owner, files)
        return write(tree.emit)
