"""The layers an output asks for: `compression` (and its level) for the layers the build made,
every layer with `force-compression`, and `rewrite-timestamp` (file times after
SOURCE_DATE_EPOCH clamped to it, in the layers the build made), as BuildKit's image exporter
converts them. Diff ids stay the same unless timestamps are rewritten.

    convert_result(store, lease, result, fmt, memo) -> BuildResult
"""

from __future__ import annotations

import dataclasses
import tarfile
import tempfile
from typing import IO, BinaryIO, cast

from bale.builder.result import BuildResult, PlatformResult
from bale.builder.state import LayerRef
from bale.exporters.export_options import ImageFormat
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.store import estargz
from bale.store.compression import LayerWriter, decompressed
from bale.store.local import Lease, Store

_MEDIA = {
    "gzip": mediatype.OCI_LAYER_GZIP,
    "estargz": mediatype.OCI_LAYER_GZIP,
    "zstd": mediatype.OCI_LAYER_ZSTD,
    "uncompressed": mediatype.OCI_LAYER,
}

Memo = dict[tuple[str, str, int | None, int | None], LayerRef]


def compression_of(desc: Descriptor) -> str:
    if desc.annotation(estargz.TOC_DIGEST_ANNOTATION) is not None:
        return "estargz"
    return mediatype.layer_compression(desc.media_type) or "uncompressed"


def convert_result(
    store: Store, lease: Lease, result: BuildResult, fmt: ImageFormat, memo: Memo
) -> BuildResult:
    """`result` with each platform's layers as `fmt` wants them (the same result when
    nothing changes)."""
    made = {str(s.layer.descriptor.digest) for s in result.steps if s.layer is not None}
    epoch = result.source_date_epoch if fmt.rewrite_timestamp else None
    platforms: list[PlatformResult] = []
    changed = False
    for r in result.platforms:
        layers = tuple(
            _convert(store, lease, layer, fmt, epoch, memo, str(layer.descriptor.digest) in made)
            for layer in r.layers
        )
        changed |= layers != r.layers
        platforms.append(dataclasses.replace(r, layers=layers))
    if not changed:
        return result
    # Provenance records the compressor of the layers the build made: now this output's.
    return dataclasses.replace(
        result,
        platforms=tuple(platforms),
        compression=fmt.compression,
        compression_level=fmt.level,
    )


def _convert(
    store: Store,
    lease: Lease,
    layer: LayerRef,
    fmt: ImageFormat,
    epoch: int | None,
    memo: Memo,
    new: bool,
) -> LayerRef:
    current = compression_of(layer.descriptor)
    wanted = fmt.compression
    rewrite = epoch if new else None
    if not (new or fmt.force_compression):
        return layer
    if rewrite is None and current == wanted and fmt.level is None:
        return layer
    key = (str(layer.descriptor.digest), wanted, fmt.level, rewrite)
    if key in memo:
        return memo[key]
    out = _recompress(store, lease, layer, wanted, fmt.level, rewrite)
    if rewrite is not None and out.diff_id == layer.diff_id and current == wanted:
        out = layer  # nothing was after the epoch: keep the layer as it was
    memo[key] = out
    lease.add(out.descriptor.digest)
    return out


def _recompress(
    store: Store, lease: Lease, layer: LayerRef, wanted: str, level: int | None, epoch: int | None
) -> LayerRef:
    desc = layer.descriptor
    with tempfile.TemporaryFile() as tar_spool, tempfile.TemporaryFile() as blob:
        with store.content.open(desc.digest, desc.size) as reader:
            _, raw = decompressed(reader)
            if epoch is not None:
                _clamp(cast(IO[bytes], raw), tar_spool, epoch)
            else:
                while chunk := raw.read(1 << 20):
                    tar_spool.write(chunk)
            reader.read()  # to EOF: the blob's digest is verified
        tar_spool.seek(0)
        if wanted == "estargz":
            made = estargz.convert(
                cast(BinaryIO, tar_spool),
                blob,
                level=estargz.DEFAULT_LEVEL if level is None else level,
            )
            new_desc = made.descriptor()
            diff_id = made.diff_id
        else:
            writer = LayerWriter(blob, "" if wanted == "uncompressed" else wanted, level=level)
            while chunk := tar_spool.read(1 << 20):
                writer.write(chunk)
            writer.close()
            new_desc = Descriptor(_MEDIA[wanted], Digest("sha256", writer.digest_hex), writer.size)
            diff_id = Digest("sha256", writer.diff_id_hex)
        blob.seek(0)
        store.ingest(
            cast(BinaryIO, blob), expected=new_desc.digest, size=new_desc.size, lease=lease
        )
    return LayerRef(new_desc, diff_id)


def _clamp(raw: IO[bytes], out: IO[bytes], epoch: int) -> None:
    """Copy a layer tar, file times after `epoch` set to it (PAX times dropped with them)."""
    with (
        tarfile.open(fileobj=raw, mode="r|") as src,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src:
            if member.mtime > epoch:
                member.mtime = epoch
                member.pax_headers = {
                    k: v
                    for k, v in member.pax_headers.items()
                    if k not in ("mtime", "atime", "ctime")
                }
            data = src.extractfile(member) if member.isreg() else None
            dst.addfile(member, data)
