"""Build outputs: buildx's `-o/--output` syntax, and the exporters each output stands for."""

from __future__ import annotations

import csv
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bale.errors import InvalidArgument
from bale.exporters.archives import DockerExporter, OciExporter
from bale.exporters.base import Exporter
from bale.exporters.export_options import ExportOptions, parse_export_options
from bale.exporters.filesystem import LocalExporter, TarExporter
from bale.exporters.registry import RegistryExporter
from bale.exporters.store_image import StoreImageExporter
from bale.oci.reference import Reference

if TYPE_CHECKING:
    from bale.registry.transport import Registries

TYPES = ("image", "oci", "docker", "local", "tar", "registry")


@dataclass(frozen=True)
class OutputSpec:
    type: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.attrs.get("dest", "")

    @property
    def options(self) -> ExportOptions:
        return parse_export_options(self.type, self.attrs)

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
    spec = OutputSpec(kind, attrs)
    try:
        _ = spec.options  # every key and value checked now, before any step
    except InvalidArgument as exc:
        raise InvalidArgument(f"{exc.message} in output {text!r}", hint=exc.hint) from None
    return spec


def image_names(spec: OutputSpec, tags: list[str]) -> list[str]:
    names = [n for n in spec.attrs.get("name", "").split(",") if n] or tags
    return [str(Reference.parse(n)) for n in names]


def exporter_for(
    spec: OutputSpec,
    tags: list[str],
    *,
    stdout: BinaryIO,
    registries: Callable[[], AbstractContextManager[Registries]],
) -> list[Exporter]:
    """The exporters one output stands for (an image pushed too with `push=true`); made
    before any step runs, so a bad output fails first."""
    names = image_names(spec, tags)
    opts = spec.options
    out: list[Exporter] = []
    if spec.type in ("image", "registry") and opts.store and (spec.type == "image" or opts.unpack):
        out.append(
            StoreImageExporter(
                names,
                name_canonical=opts.name_canonical,
                dangling_prefix=opts.dangling_name_prefix,
                unpack=opts.unpack,
            )
        )
    elif spec.type == "oci":
        out.append(OciExporter(_dest(spec), names, opts.tar, stdout, opts.format.annotations))
    elif spec.type == "docker":
        out.append(DockerExporter(_dest(spec), names, stdout))
    elif spec.type == "local":
        out.append(LocalExporter(Path(spec.dest), opts.platform_split))
    elif spec.type == "tar":
        out.append(TarExporter(_dest(spec), stdout, opts.platform_split))
    if opts.push:
        if not names:
            what = "--push" if spec.type == "registry" else "push=true"
            raise InvalidArgument(f"{what} needs an image name", hint="add -t NAME:TAG")
        out.append(RegistryExporter(names, registries, by_digest=opts.push_by_digest))
    elif spec.type == "image" and not opts.store:
        raise InvalidArgument(
            "output type=image with store=false and no push keeps nothing",
            hint="add push=true, or drop store=false",
        )
    return out


def _dest(spec: OutputSpec) -> Path | None:
    return None if spec.dest in ("", "-") else Path(spec.dest)
