"""`--annotation [TYPE[,TYPE][PLATFORM]:]KEY=VALUE`, placed as buildx places it: turned into
the exporter's `annotation-TYPE[PLATFORM].KEY` attributes of every image output (the flag
winning over the same attribute given in `-o`)."""

from __future__ import annotations

import argparse
import dataclasses

from bale.exporters.outputs import OutputSpec
from bale.oci.annotations import parse_annotation_flags

_IMAGE_OUTPUTS = ("image", "registry", "oci", "docker")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="[TYPE[,TYPE][PLATFORM]:]KEY=VALUE",
        help="annotation for the image manifests (default), index, manifest-descriptor "
        "or index-descriptor, e.g. index,manifest:foo=bar",
    )


def with_annotations(specs: list[OutputSpec], texts: tuple[str, ...]) -> list[OutputSpec]:
    """`specs` with the flags' annotations in each image output's attributes."""
    parsed = parse_annotation_flags(texts)
    if not parsed:
        return specs
    attrs = {spec.exporter_key(): spec.value for spec in parsed}
    out = []
    for spec in specs:
        if spec.type in _IMAGE_OUTPUTS:
            spec = dataclasses.replace(spec, attrs={**spec.attrs, **attrs})
            _ = spec.options  # checked now, before any step
        out.append(spec)
    return out
