"""Build outputs, parsed from buildx's `-o/--output` syntax and written after a build."""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bale.builder.build import BuildOutcome
from bale.errors import InvalidArgument
from bale.exporters.archive_writer import atomic_output
from bale.exporters.oci_archive import (
    SaveEntry,
    write_docker_archive,
    write_oci_archive,
    write_oci_dir,
)
from bale.oci.descriptor import Descriptor
from bale.registry.reference import Reference
from bale.store.local import Store

TYPES = ("image", "oci", "docker", "local", "tar", "registry")


@dataclass(frozen=True)
class OutputSpec:
    type: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.attrs.get("dest", "")

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.attrs.get(key)
        if value is None:
            return default
        if value.lower() in ("true", "1", ""):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise InvalidArgument(f"invalid value {value!r} for output attribute {key}")


def parse_output(text: str) -> OutputSpec:
    """`type=local,dest=out`, `out` (local), `-` (tar to stdout), as buildx reads them."""
    if text == "-":
        return OutputSpec("tar", {"dest": "-"})
    if "=" not in text and "," not in text:
        return OutputSpec("local", {"dest": text})
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise InvalidArgument(f"invalid output {text!r}") from None
    attrs: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid output field {item!r}: expected key=value")
        attrs[key.strip().lower()] = value.strip()
    kind = attrs.pop("type", "")
    if kind not in TYPES:
        raise InvalidArgument(
            f"unsupported output type {kind!r}" if kind else f"output {text!r} has no type",
            hint="use type=image, oci, docker, local, tar or registry",
        )
    if kind in ("local", "tar", "oci") and "dest" not in attrs:
        raise InvalidArgument(f"output type={kind} needs dest=PATH")
    return OutputSpec(kind, attrs)


def image_names(spec: OutputSpec, tags: list[str]) -> list[str]:
    names = [n for n in spec.attrs.get("name", "").split(",") if n] or tags
    return [str(Reference.parse(n)) for n in names]


def export(store: Store, outcome: BuildOutcome, spec: OutputSpec, tags: list[str]) -> None:
    if spec.type == "image":
        for name in image_names(spec, tags):
            store.set_image(name, outcome.target)
        return
    if spec.type == "oci":
        names = image_names(spec, tags)
        entries = [SaveEntry(n, outcome.target) for n in names] or [SaveEntry("", outcome.target)]
        if not spec.flag("tar", True):
            write_oci_dir(store, entries, spec.dest)
            return
        with atomic_output(_dest(spec), sys.stdout.buffer) as out:
            write_oci_archive(store, entries, out)
        return
    if spec.type == "docker":
        if len(outcome.manifests) != 1:
            raise InvalidArgument(
                "docker exporter does not currently support exporting manifest lists",
                hint="build one platform, or use -o type=oci",
            )
        manifest = outcome.manifests[0]
        plain = Descriptor(manifest.media_type, manifest.digest, manifest.size)
        with atomic_output(_dest(spec), sys.stdout.buffer) as out:
            write_docker_archive(store, [(image_names(spec, tags), plain)], out)
        return
    if spec.type == "local":
        write_local(store, outcome, Path(spec.dest))
        return
    if spec.type == "tar":
        with tempfile.TemporaryDirectory(prefix="bale-tar-") as tmp:
            write_local(store, outcome, Path(tmp) / "root")
            root = Path(tmp) / "root"
            with (
                atomic_output(_dest(spec), sys.stdout.buffer) as out,
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for entry in sorted(os.listdir(root)):
                    tar.add(root / entry, arcname=entry)
        return
    raise InvalidArgument(f"output type={spec.type} needs the registry client (bale push)")


def _dest(spec: OutputSpec) -> Path | None:
    return None if spec.dest in ("", "-") else Path(spec.dest)


def write_local(store: Store, outcome: BuildOutcome, dest: Path) -> None:
    """Each platform's filesystem; with several, one subdirectory each (`linux_amd64`)."""
    from bale.builder.layers.apply import apply_layer  # loaded only for this output

    multi = len(outcome.platforms) > 1
    dest.mkdir(parents=True, exist_ok=True)
    for result in outcome.platforms:
        target = dest / result.platform.dirname if multi else dest
        if target.exists() and multi:
            shutil.rmtree(target)
        target.mkdir(parents=True, exist_ok=True)
        for layer in result.layers:
            with store.content.open(layer.descriptor.digest, layer.descriptor.size) as blob:
                apply_layer(blob, target, expect_diff_id=layer.diff_id)  # type: ignore[arg-type]
