"""SLSA provenance for one platform's build, field for field as BuildKit writes it.

BuildKit builds one SLSA v1 predicate and converts it to v0.2 on request
(`solver/llbsolver/provenance/types`); so does this module. What `mode` keeps:

- `min`: the frontend, the non-secret frontend options (`target`, `filename`,
  `context:NAME`, …), the local sources, the materials and the build platform. Every
  `build-arg:*` and `label:*` entry is dropped — keys and values — as are secrets and
  SSH ids; `completeness.request` then turns false.
- `max`: all of `min` plus the build arguments and labels with their values, the ids of
  the secrets and SSH sockets used (never their values), the build steps and the
  Dockerfile source.

Differences from BuildKit, on purpose: `reproducible=true` also drops the start and
finish times and the node name, so that an unchanged rebuild keeps its digest; the
layer compressor (and the node, when known) is recorded next to `builderPlatform`, so a
rebuild elsewhere can produce the same blob bytes.
"""

from __future__ import annotations

import base64
import csv
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bale.errors import InvalidArgument
from bale.exporters import intoto
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.platform import Platform
from bale.oci.reference import Reference

PREDICATE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_V02 = "https://slsa.dev/provenance/v0.2"
BUILD_TYPE_V1 = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
BUILD_TYPE_V02 = "https://mobyproject.org/buildkit@v1"
_V02_METADATA = "https://mobyproject.org/buildkit@v1#metadata"
_V02_HERMETIC = "https://mobyproject.org/buildkit@v1#hermetic"

Mode = Literal["min", "max"]
Version = Literal["v1", "v0.2"]

# Frontend options that describe the machine rather than the build (BuildKit's FilterArgs).
_HOST_SPECIFIC = frozenset({"cgroup-parent", "image-resolve-mode", "platform", "cache-imports"})


@dataclass(frozen=True)
class ProvenanceOptions:
    """The `--attest type=provenance,...` parameters BuildKit reads."""

    mode: Mode = "max"
    version: Version = "v1"
    builder_id: str = ""
    reproducible: bool = False
    filename: str = "provenance.json"
    inline_only: bool = False

    @classmethod
    def parse(cls, attrs: str | Mapping[str, str]) -> ProvenanceOptions:
        """From `mode=min,builder-id=…` or a mapping; unknown keys are ignored, as
        BuildKit ignores them. An empty value means BuildKit's defaults (`mode=max`)."""
        if isinstance(attrs, str):
            pairs: dict[str, str] = {}
            for row in csv.reader([attrs]) if attrs.strip() else []:
                for item in row:
                    key, _, value = item.partition("=")
                    pairs[key.strip().lower()] = value.strip()
            attrs = pairs
        mode_text = attrs.get("mode", "max")
        if mode_text == "full":
            mode_text = "max"
        if mode_text not in ("min", "max"):
            raise InvalidArgument(f'invalid mode "{mode_text}"', hint="mode is min or max")
        mode: Mode = "min" if mode_text == "min" else "max"
        version_text = attrs.get("version", "v1")
        if version_text not in ("v1", "v0.2"):
            raise InvalidArgument(
                f"invalid provenance SLSA version: {version_text}", hint="version is v1 or v0.2"
            )
        version: Version = "v1" if version_text == "v1" else "v0.2"
        return cls(
            mode=mode,
            version=version,
            builder_id=attrs.get("builder-id", ""),
            reproducible=_parse_bool(attrs.get("reproducible", "false"), "reproducible"),
            filename=attrs.get("filename", "provenance.json") or "provenance.json",
            inline_only=_parse_bool(attrs.get("inline-only", "false"), "inline-only"),
        )

    @property
    def predicate_type(self) -> str:
        return PREDICATE_V02 if self.version == "v0.2" else PREDICATE_V1


def _parse_bool(text: str, what: str) -> bool:
    # Go's strconv.ParseBool, whose spellings BuildKit accepts.
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidArgument(f'failed to parse {what} flag "{text}"', hint="use true or false")


@dataclass(frozen=True)
class ImageMaterial:
    """A base image (or `COPY --from=image`) and what it resolved to.

    `platform` is the platform it was resolved for: a `FROM --platform=$BUILDPLATFORM`
    stage's base resolves for the build platform, not the target. `local` marks an
    image from an OCI layout context (BuildKit's `pkg:oci`)."""

    ref: str
    digest: Digest
    platform: Platform | None
    local: bool = False


@dataclass(frozen=True)
class URLMaterial:
    """An `ADD https://…` source or an HTTP(S) context, with the digest of what came."""

    url: str
    digest: Digest


@dataclass(frozen=True)
class GitMaterial:
    """A git source or context and the commit it resolved to (sha1 or sha256 hex)."""

    url: str
    commit: str


Material = ImageMaterial | URLMaterial | GitMaterial


@dataclass(frozen=True)
class NamedContext:
    """A `--build-context NAME=SOURCE`; `material` is what it resolved to, None for a
    local directory (which becomes the local source `NAME`)."""

    name: str
    source: str
    material: Material | None = None


@dataclass(frozen=True)
class MountUse:
    """A secret or SSH socket a step mounted: its id (never its value)."""

    id: str
    optional: bool = False


@dataclass(frozen=True)
class Compression:
    """The layer compressor, recorded so a rebuild elsewhere can produce the same bytes."""

    type: str
    level: int | None = None
    implementation: str = ""
    implementation_version: str = ""
    settings: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.level is not None:
            out["level"] = self.level
        if self.implementation:
            out["implementation"] = self.implementation
        if self.implementation_version:
            out["implementationVersion"] = self.implementation_version
        out.update(self.settings)
        # Sorted, as BuildKit's map-backed internal parameters come out.
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class BuildStep:
    """One step of the build graph for `mode=max`'s `buildConfig.llbDefinition`:
    `op` is the step's JSON object as text, `inputs` are `stepN:INDEX` references."""

    id: str
    op: str = ""
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProvenanceInput:
    """What one platform's provenance records. Ordering of the tuples does not matter:
    the statement sorts what BuildKit sorts."""

    platform: Platform
    subject: Descriptor
    build_platform: Platform
    options: ProvenanceOptions = field(default_factory=ProvenanceOptions)
    subject_names: tuple[str, ...] = ()
    materials: tuple[Material, ...] = ()
    named_contexts: tuple[NamedContext, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    secrets: tuple[MountUse, ...] = ()
    ssh: tuple[MountUse, ...] = ()
    dockerfile: str = "Dockerfile"
    dockerfile_digest: Digest | None = None
    dockerfile_source: bytes | None = None
    context: str = ""
    locals: tuple[str, ...] = ("context", "dockerfile")
    frontend: str = "dockerfile.v0"
    frontend_attrs: tuple[tuple[str, str], ...] = ()
    started: datetime | None = None
    finished: datetime | None = None
    invocation_id: str = ""
    node: str = ""
    compression: Compression | None = None
    network_access: bool = True
    steps: tuple[BuildStep, ...] = ()


@dataclass(frozen=True)
class ProvenanceWarning:
    rule: str
    message: str

    @property
    def url(self) -> str:
        from bale.frontends.dockerfile.checks import rule_url

        return rule_url(self.rule)


def redact_credentials(text: str) -> str:
    """BuildKit's urlutil.RedactCredentials: `https://u:p@host` → `https://xxxxx:xxxxx@host`."""
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or "@" not in parts.netloc:
        return text
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if user and colon:
        masked = "xxxxx:xxxxx"
    elif user:
        masked = "xxxxx"
    elif colon:
        masked = ":xxxxx"
    else:
        return text
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{masked}@{host}"))


def _rfc3339(moment: datetime) -> str:
    # Go's time.RFC3339Nano in UTC, as in-toto requires: fraction without trailing zeros.
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _commit_digest(commit: str) -> dict[str, str]:
    return {"sha256" if len(commit) == 64 else "sha1": commit}


def _all_materials(item: ProvenanceInput) -> list[Material]:
    return list(item.materials) + [c.material for c in item.named_contexts if c.material]


def _image_key(ref: str) -> str:
    try:
        return str(Reference.parse(ref, default_tag=False))
    except InvalidArgument:
        return ref


def _resolved_dependencies(item: ProvenanceInput) -> list[dict[str, Any]]:
    images: dict[tuple[str, bool, str], ImageMaterial] = {}
    gits: dict[str, GitMaterial] = {}
    urls: dict[str, URLMaterial] = {}
    for m in _all_materials(item):
        if isinstance(m, ImageMaterial):
            key = (_image_key(m.ref), m.local, str(m.platform) if m.platform else "")
            images.setdefault(key, m)
        elif isinstance(m, GitMaterial):
            gits.setdefault(redact_credentials(m.url), m)
        else:
            urls.setdefault(redact_credentials(m.url), m)
    out: list[dict[str, Any]] = []
    for key in sorted(images):
        image = images[key]
        out.append(
            {
                "uri": intoto.image_purl(image.ref, image.platform, local=image.local),
                "digest": intoto.digest_set(image.digest),
            }
        )
    out += [{"uri": u, "digest": _commit_digest(gits[u].commit)} for u in sorted(gits)]
    out += [{"uri": u, "digest": intoto.digest_set(urls[u].digest)} for u in sorted(urls)]
    return out


def _config_source(item: ProvenanceInput) -> dict[str, Any]:
    source: dict[str, Any] = {}
    if item.context:
        uri = redact_credentials(item.context)
        source["uri"] = uri
        for m in _all_materials(item):
            if isinstance(m, GitMaterial) and redact_credentials(m.url) == uri:
                source["digest"] = _commit_digest(m.commit)
            elif isinstance(m, URLMaterial) and redact_credentials(m.url) == uri:
                source["digest"] = intoto.digest_set(m.digest)
    elif item.dockerfile_digest is not None:
        # A local build's config is the Dockerfile itself: its digest pins it.
        source["digest"] = intoto.digest_set(item.dockerfile_digest)
    if item.dockerfile:
        source["path"] = item.dockerfile
    return source


def _request(item: ProvenanceInput, mode: Mode) -> tuple[dict[str, Any], bool, dict[str, str]]:
    """(request, complete, vcs): the frontend request as BuildKit records it."""
    args: dict[str, str] = {}
    for key, value in item.frontend_attrs:
        if key in _HOST_SPECIFIC or key.startswith("attest:") or key in ("context", "filename"):
            continue
        args[key] = value
    for ctx in item.named_contexts:
        args[f"context:{ctx.name}"] = ctx.source if ctx.material else f"local:{ctx.name}"
    for key, value in item.build_args:
        args[f"build-arg:{key}"] = value
    for key, value in item.labels:
        args[f"label:{key}"] = value
    vcs: dict[str, str] = {}
    for key in [k for k in args if k.startswith("vcs:")]:
        value = args.pop(key)
        if value:
            vcs[key[4:]] = redact_credentials(value) if key == "vcs:source" else value
    for key in [k for k in args if k.startswith("context:")]:
        args[key] = redact_credentials(args[key])
    complete = bool(item.frontend)
    secrets = _mounts(item.secrets, "")
    ssh = _mounts(item.ssh, "default")
    if mode == "min":
        scrubbed = {k: v for k, v in args.items() if not k.startswith(("build-arg:", "label:"))}
        if len(scrubbed) != len(args):
            complete = False
        args, secrets, ssh = scrubbed, [], []
    request: dict[str, Any] = {}
    if item.frontend:
        request["frontend"] = item.frontend
    if args:
        request["args"] = dict(sorted(args.items()))
    if secrets:
        request["secrets"] = secrets
    if ssh:
        request["ssh"] = ssh
    locals_ = sorted(set(item.locals) | {c.name for c in item.named_contexts if not c.material})
    if locals_:
        request["locals"] = [{"name": name} for name in locals_]
    return request, complete, vcs


def _mounts(uses: tuple[MountUse, ...], default_id: str) -> list[dict[str, Any]]:
    # BuildKit's AddSecret/AddSSH: one entry per id, required if any use requires it.
    optional: dict[str, bool] = {}
    for use in uses:
        key = use.id or default_id
        optional[key] = optional.get(key, True) and use.optional
    return [{"id": k, "optional": True} if optional[k] else {"id": k} for k in sorted(optional)]


def _internal(item: ProvenanceInput, mode: Mode) -> dict[str, Any]:
    # BuildKit marshals these through a map, so the keys come out sorted.
    internal: dict[str, Any] = {"builderPlatform": str(item.build_platform)}
    if mode == "max" and item.steps:
        internal["buildConfig"] = {"llbDefinition": [_step(s) for s in item.steps]}
    if item.compression is not None:
        internal["layerCompression"] = item.compression.to_json()
    if item.node and not item.options.reproducible:
        internal["node"] = item.node
    return dict(sorted(internal.items()))


def _step(step: BuildStep) -> dict[str, Any]:
    out: dict[str, Any] = {"id": step.id}
    if step.op:
        try:
            out["op"] = json.loads(step.op)
        except ValueError:
            raise InvalidArgument(f"build step {step.id}: op is not JSON") from None
    if step.inputs:
        out["inputs"] = list(step.inputs)
    return out


def _buildkit_metadata(item: ProvenanceInput, mode: Mode, vcs: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if vcs:
        meta["vcs"] = dict(sorted(vcs.items()))
    if mode == "max" and item.dockerfile_source is not None:
        info = {
            "filename": item.dockerfile or "Dockerfile",
            "language": "Dockerfile",
            "data": base64.b64encode(item.dockerfile_source).decode(),
        }
        meta["source"] = {"infos": [info]}
    return meta


def predicate_v1(item: ProvenanceInput) -> dict[str, Any]:
    """The SLSA v1 predicate, in the field order Go's encoder gives BuildKit's types."""
    options = item.options
    request, request_complete, vcs = _request(item, options.mode)
    incomplete_materials = bool(request.get("locals"))
    definition: dict[str, Any] = {"buildType": BUILD_TYPE_V1}
    dependencies = _resolved_dependencies(item)
    if dependencies:
        definition["resolvedDependencies"] = dependencies
    definition["externalParameters"] = {"configSource": _config_source(item), "request": request}
    definition["internalParameters"] = _internal(item, options.mode)
    metadata: dict[str, Any] = {}
    if item.invocation_id:
        metadata["invocationId"] = item.invocation_id
    if not options.reproducible:
        if item.started is not None:
            metadata["startedOn"] = _rfc3339(item.started)
        if item.finished is not None:
            metadata["finishedOn"] = _rfc3339(item.finished)
    metadata["buildkit_metadata"] = _buildkit_metadata(item, options.mode, vcs)
    if not incomplete_materials and not item.network_access:
        metadata["buildkit_hermetic"] = True
    metadata["buildkit_completeness"] = {
        "request": request_complete,
        "resolvedDependencies": not incomplete_materials,
    }
    if options.reproducible:
        metadata["buildkit_reproducible"] = True
    return {
        "buildDefinition": definition,
        "runDetails": {"builder": {"id": options.builder_id}, "metadata": metadata},
    }


def predicate_v02(item: ProvenanceInput) -> dict[str, Any]:
    """The SLSA v0.2 predicate: BuildKit's ConvertToSLSA02 of the v1 one."""
    v1 = predicate_v1(item)
    definition, run = v1["buildDefinition"], v1["runDetails"]
    meta1 = run["metadata"]
    internal = dict(definition["internalParameters"])
    build_config = internal.pop("buildConfig", None)
    environment = {"platform": internal.pop("builderPlatform"), **internal}
    source1 = definition["externalParameters"]["configSource"]
    config_source = {k: v for k, v in source1.items() if k != "path"}
    if "path" in source1:
        config_source["entryPoint"] = source1["path"]
    out: dict[str, Any] = {"builder": {"id": run["builder"]["id"]}, "buildType": BUILD_TYPE_V02}
    if definition.get("resolvedDependencies"):
        out["materials"] = definition["resolvedDependencies"]
    out["invocation"] = {
        "configSource": config_source,
        "parameters": definition["externalParameters"]["request"],
        "environment": dict(sorted(environment.items())),
    }
    if build_config is not None:
        out["buildConfig"] = build_config
    metadata: dict[str, Any] = {}
    if "invocationId" in meta1:
        metadata["buildInvocationID"] = meta1["invocationId"]
    if "startedOn" in meta1:
        metadata["buildStartedOn"] = meta1["startedOn"]
    if "finishedOn" in meta1:
        metadata["buildFinishedOn"] = meta1["finishedOn"]
    completeness = meta1["buildkit_completeness"]
    metadata["completeness"] = {
        "parameters": completeness["request"],
        "environment": True,
        "materials": completeness["resolvedDependencies"],
    }
    metadata["reproducible"] = bool(meta1.get("buildkit_reproducible", False))
    metadata[_V02_METADATA] = meta1["buildkit_metadata"]
    if meta1.get("buildkit_hermetic"):
        metadata[_V02_HERMETIC] = True
    out["metadata"] = metadata
    return out


def provenance_statement(item: ProvenanceInput) -> dict[str, Any]:
    """The in-toto statement BuildKit attaches for this platform."""
    version = item.options.version
    predicate = predicate_v02(item) if version == "v0.2" else predicate_v1(item)
    subject = intoto.subjects(item.subject_names, item.platform, item.subject.digest)
    return intoto.statement(item.options.predicate_type, predicate, subject)


def provenance_warnings(item: ProvenanceInput) -> list[ProvenanceWarning]:
    """What to tell the user before recording this provenance (see `secret_arg_warnings`)."""
    return secret_arg_warnings(item.options, [name for name, _ in item.build_args])


def secret_arg_warnings(
    options: ProvenanceOptions, build_args: Iterable[str]
) -> list[ProvenanceWarning]:
    """In `mode=max` a build argument whose name looks like a secret is recorded with its
    value: one SecretsUsedInArgOrEnv warning per such name."""
    if options.mode != "max":
        return []
    # The lint rules load only for the mode that needs them (a cached build never does).
    from bale.frontends.dockerfile.checks import _is_secret

    return [
        ProvenanceWarning(
            "SecretsUsedInArgOrEnv",
            f'Do not use build arguments for sensitive data ("{name}"): provenance '
            "mode=max records its value; pass it with --secret, or use mode=min",
        )
        for name in sorted({name for name in build_args if _is_secret(name)})
    ]
