"""What the Dockerfile frontend tells the attestations: each base with the platform it was
resolved for, and the extra SBOM targets BUILDKIT_SBOM_SCAN_STAGE / _CONTEXT ask for, by
BuildKit's rules (declared ARGs only, stage over global, names or booleans, built stages)."""

from __future__ import annotations

import pytest

from bale.frontends.dockerfile import resolve
from bale.frontends.dockerfile.convert import ConvertOptions, convert
from bale.frontends.graph import ExecOp, Material, PlatformTarget, ResolvedImage
from bale.oci.config import ImageConfig
from bale.oci.digest import Digest
from bale.oci.platform import Platform

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")


class Images:
    """Every image resolves; the manifest depends on the platform, the index does not."""

    def image(self, ref: str, platform: Platform) -> ResolvedImage:
        return ResolvedImage(
            ref,
            Digest.of(f"{ref} {platform}".encode()),
            ImageConfig(platform=platform),
            resolved=str(Digest.of(ref.encode())),
        )


def target(text: str, build_args: dict[str, str] | None = None) -> PlatformTarget:
    resolved = resolve(
        text, target_platform=ARM64, build_platform=AMD64, build_args=build_args or {}
    )
    definition = convert([resolved], Images(), ConvertOptions())
    (only,) = definition.targets
    return only


def test_a_buildplatform_stage_base_is_recorded_for_the_build_platform() -> None:
    out = target(
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nRUN make\n"
        "FROM alpine:3.19\nCOPY --from=build /out /out\nCOPY --from=busybox:1 /bin/sh /sh\n"
    )
    assert out.materials == (
        Material("golang:1.22", str(Digest.of(b"golang:1.22")), AMD64),
        Material("alpine:3.19", str(Digest.of(b"alpine:3.19")), ARM64),
        Material("busybox:1", str(Digest.of(b"busybox:1")), ARM64),
    )


STAGES = (
    "{glob}FROM alpine AS build\n{build}RUN make\n"
    "FROM alpine AS unused\nARG BUILDKIT_SBOM_SCAN_STAGE=true\n"
    "FROM alpine AS tools\n{tools}RUN make\n"
    "FROM alpine\n{final}COPY --from=build /a /a\nCOPY --from=tools /b /b\n"
)


@pytest.mark.parametrize(
    ("parts", "build_args", "scanned", "context"),
    [
        ({}, {}, set(), False),
        # A stage's own ARG.
        ({"build": "ARG BUILDKIT_SBOM_SCAN_STAGE=true\n"}, {}, {"build"}, False),
        # A global value reaches the stages that declare the ARG without a value...
        (
            {
                "glob": "ARG BUILDKIT_SBOM_SCAN_STAGE=tools\n",
                "build": "ARG BUILDKIT_SBOM_SCAN_STAGE\n",
                "tools": "ARG BUILDKIT_SBOM_SCAN_STAGE\n",
            },
            {},
            {"tools"},
            False,
        ),
        # ...and every stage when true (a stage not built is never scanned).
        ({"glob": "ARG BUILDKIT_SBOM_SCAN_STAGE=true\n"}, {}, {"build", "tools"}, False),
        # A build-arg overrides a declared ARG...
        (
            {"build": "ARG BUILDKIT_SBOM_SCAN_STAGE=true\n"},
            {"BUILDKIT_SBOM_SCAN_STAGE": "false"},
            set(),
            False,
        ),
        # ...but declares nothing.
        ({}, {"BUILDKIT_SBOM_SCAN_STAGE": "true", "BUILDKIT_SBOM_SCAN_CONTEXT": "1"}, set(), False),
        ({"final": "ARG BUILDKIT_SBOM_SCAN_CONTEXT=true\n"}, {}, set(), True),
        # The context is the final stage's business: a build stage's value does not count.
        ({"build": "ARG BUILDKIT_SBOM_SCAN_CONTEXT=true\n"}, {}, set(), False),
    ],
)
def test_sbom_scan_arguments_follow_buildkit(
    parts: dict[str, str], build_args: dict[str, str], scanned: set[str], context: bool
) -> None:
    text = STAGES.format(**{k: parts.get(k, "") for k in ("glob", "build", "tools", "final")})
    out = target(text, build_args)
    assert {name for name, _ in out.scan_stages} == scanned
    assert out.scan_context is context


def test_a_scanned_stage_is_its_last_step_and_the_argument_never_reaches_a_step() -> None:
    resolved = resolve(
        "FROM alpine AS build\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nARG OTHER=1\n"
        "RUN echo $BUILDKIT_SBOM_SCAN_STAGE\nFROM alpine\nCOPY --from=build /a /a\n",
        target_platform=ARM64,
        build_platform=AMD64,
    )
    definition = convert([resolved], Images(), ConvertOptions())
    ((name, vertex),) = definition.targets[0].scan_stages
    run = definition.graph.vertices[vertex].op
    assert name == "build" and isinstance(run, ExecOp)
    assert "OTHER=1" in run.env
    assert not any(e.startswith("BUILDKIT_SBOM_SCAN_STAGE=") for e in run.env)
