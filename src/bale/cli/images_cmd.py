"""Image commands: images, image inspect/prune/ls/rm/tag, tag, rmi, save, load, import."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from bale.cli import gotemplate
from bale.cli.common import add_unpack_flag, ago, open_store, table, unpack_arrived
from bale.errors import BaleError, InvalidArgument, NotFound
from bale.exporters.archive_writer import atomic_output
from bale.exporters.oci_archive import SaveEntry, write_docker_archive, write_oci_archive
from bale.oci import mediatype
from bale.oci.config import parse_time, source_date_epoch
from bale.oci.descriptor import Descriptor
from bale.oci.platform import Platform, host_platform, require_known
from bale.oci.reference import Reference
from bale.store import gc
from bale.store.archive_load import load_archive
from bale.store.images import ImageRecord
from bale.store.importer import import_rootfs
from bale.store.local import Store
from bale.store.summary import ImageSummary, summarize


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    images = sub.add_parser("images", help="list images")
    _images_args(images)

    image = sub.add_parser("image", help="manage images")
    isub = image.add_subparsers(dest="image_command", metavar="COMMAND")
    isub.required = True
    _images_args(isub.add_parser("ls", help="list images"))
    inspect = isub.add_parser("inspect", help="show an image's details as JSON")
    inspect.add_argument("refs", nargs="+", metavar="REF")
    inspect.add_argument("--platform", help="show this platform's manifest and config")
    inspect.add_argument("-f", "--format", help="a Go template per image ({{.Id}})")
    inspect.set_defaults(func=cmd_inspect)
    prune = isub.add_parser("prune", help="remove dangling images and free unused content")
    prune.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="remove every image, not only dangling ones (no container uses any)",
    )
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (always set)")
    prune.set_defaults(func=cmd_prune)
    _rmi_args(isub.add_parser("rm", help="remove images"))
    _tag_args(isub.add_parser("tag", help="give an image another name"))
    _rmi_args(sub.add_parser("rmi", help="remove images"))
    _tag_args(sub.add_parser("tag", help="give an image another name"))

    save = sub.add_parser("save", help="write images to an archive")
    save.add_argument("refs", nargs="+", metavar="REF")
    save.add_argument("-o", "--output", help="archive file (default: stdout)")
    save.add_argument("--format", choices=("oci", "docker"), default="oci")
    save.add_argument("--platform", help="with --format docker: the platform to write")
    save.set_defaults(func=cmd_save)

    load = sub.add_parser("load", help="load images from an OCI or docker archive")
    load.add_argument("-i", "--input", help="archive file (default: stdin)")
    load.add_argument("-q", "--quiet", action="store_true")
    add_unpack_flag(load)
    load.set_defaults(func=cmd_load)

    imp = sub.add_parser("import", help="import a root filesystem tarball as an image")
    imp.add_argument("source", metavar="TARBALL", help="tar file, or - for stdin")
    imp.add_argument("ref", metavar="REF")
    imp.add_argument("--platform", help="platform of the root filesystem (default: host)")
    imp.add_argument("-m", "--message", default="", help="history comment")
    imp.add_argument(
        "--created",
        metavar="TIME",
        help="the image's creation time, RFC 3339 or seconds since 1970 "
        "(default: $SOURCE_DATE_EPOCH, else now)",
    )
    add_unpack_flag(imp)
    imp.set_defaults(func=cmd_import)


def _images_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", nargs="?", help="only this repository (and tag)")
    p.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="show all images (dangling ones are shown by default, as docker does)",
    )
    p.add_argument(
        "-f",
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dangling=true|false, reference=PATTERN",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    p.add_argument("--tree", action="store_true", help="show platforms and attestations")
    p.add_argument(
        "--format",
        default="table",
        help="table, json, or a Go template ({{.Repository}}:{{.Tag}}; 'table ...')",
    )
    p.add_argument("--no-trunc", action="store_true", help="full image IDs")
    p.set_defaults(func=cmd_images)


def _rmi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("refs", nargs="+", metavar="REF")
    p.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="remove an image by ID with all its names; no error for missing ones",
    )
    p.set_defaults(func=cmd_rmi)


def _tag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("target", metavar="TARGET")
    p.set_defaults(func=cmd_tag)


# -- listing -----------------------------------------------------------------------------


def _image_id(store: Store, record: ImageRecord) -> str:
    return store.image_id(record.target)


def _split_name(record: ImageRecord) -> tuple[str, str]:
    if record.dangling:
        return "<none>", "<none>"
    ref = Reference.parse(record.name)
    return ref.familiar_name, ref.tag or "<none>"


def _references(record: ImageRecord, pattern: str) -> bool:
    if record.dangling:
        return False
    ref = Reference.parse(record.name)
    return fnmatch.fnmatchcase(ref.familiar(), pattern) or fnmatch.fnmatchcase(
        ref.familiar_name, pattern
    )


def _selected(store: Store, args: argparse.Namespace) -> list[ImageRecord]:
    """docker's filters: values of one key are ORed, different keys ANDed; a REPOSITORY
    argument with a glob is a reference filter."""
    records = store.images().all(include_dangling=True)
    by_key: dict[str, list[str]] = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if (
            not sep
            or key not in ("dangling", "reference")
            or (key == "dangling" and value not in ("true", "false"))
        ):
            raise InvalidArgument(
                f"invalid filter {item!r}", hint="use dangling=true|false or reference=PATTERN"
            )
        by_key.setdefault(key, []).append(value)
    if args.repository and set("*?[") & set(args.repository):
        by_key.setdefault("reference", []).append(args.repository)
        args.repository = None
    if "dangling" in by_key:
        wanted = {v == "true" for v in by_key["dangling"]}
        records = [r for r in records if r.dangling in wanted]
    if "reference" in by_key:
        records = [r for r in records if any(_references(r, p) for p in by_key["reference"])]
    if args.repository:
        want = Reference.parse(args.repository, default_tag=False)
        records = [
            r
            for r in records
            if not r.dangling
            and Reference.parse(r.name).name == want.name
            and (not want.tag or Reference.parse(r.name).tag == want.tag)
        ]
    return records


def cmd_images(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        records = _selected(store, args)
        summaries = {r.name: summarize(store, r.target) for r in records}
        if args.quiet:
            seen: set[str] = set()
            for r in records:
                ident = _image_id(store, r)
                shown = ident if args.no_trunc else ident.removeprefix("sha256:")[:12]
                if shown not in seen:
                    seen.add(shown)
                    print(shown)
            return 0
        if args.format == "json":
            for r in records:
                print(
                    json.dumps(
                        _json_row(store, r, summaries[r.name], args.no_trunc), sort_keys=True
                    )
                )
            return 0
        if args.format != "table":
            template = args.format
            if template.startswith("table "):
                template = template[len("table ") :]
                print(gotemplate.table_header(template))
            for r in records:
                print(
                    gotemplate.render(
                        template, _json_row(store, r, summaries[r.name], args.no_trunc)
                    )
                )
            return 0
        if args.tree:
            print(_tree(store, records, summaries))
            return 0
        rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
        for r in records:
            repo, tag = _split_name(r)
            ident = _image_id(store, r)
            rows.append(
                [
                    repo,
                    tag,
                    ident if args.no_trunc else ident.removeprefix("sha256:")[:12],
                    _created_ago(summaries[r.name].created(store), r.created),
                    gc.human_size(summaries[r.name].content_size),
                ]
            )
        print(table(rows))
    return 0


def _created_ago(config_created: str, record_created: float) -> str:
    """docker shows the image's own creation time; the record's when the config has none."""
    when = parse_time(config_created)
    return ago(record_created if when is None else when)


def _json_row(
    store: Store, r: ImageRecord, summary: ImageSummary, no_trunc: bool = False
) -> dict[str, Any]:
    """docker's fields (`docker images --format json`), and bale's Name, MediaType,
    Platforms and ContentSize (bytes)."""
    repo, tag = _split_name(r)
    ident = _image_id(store, r)
    created = parse_time(summary.created(store))
    when = r.created if created is None else created
    size = gc.human_size(summary.content_size)
    return {
        "Containers": "N/A",
        "CreatedAt": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "CreatedSince": ago(when),
        "Digest": str(r.target.digest),
        "ID": ident if no_trunc else ident.removeprefix("sha256:")[:12],
        "Repository": repo,
        "SharedSize": "N/A",
        "Size": size,
        "Tag": tag,
        "UniqueSize": "N/A",
        "VirtualSize": size,
        "Name": r.name,
        "MediaType": r.target.media_type,
        "ContentSize": summary.content_size,
        "Platforms": [str(m.platform) for m in summary.manifests if m.platform and m.available],
    }


def _tree(store: Store, records: list[ImageRecord], summaries: dict[str, ImageSummary]) -> str:
    rows = [["IMAGE", "ID", "CONTENT SIZE", "EXTRA"]]
    for r in records:
        repo, tag = _split_name(r)
        name = f"{repo}:{tag}" if not r.dangling else r.name
        s = summaries[r.name]
        rows.append([name, r.target.digest.hex[:12], gc.human_size(s.content_size), ""])
        for i, m in enumerate(s.manifests):
            last = i == len(s.manifests) - 1
            branch = "└─" if last else "├─"
            extra = "" if m.available else "not present"
            rows.append(
                [
                    f"{branch} {m.platform or 'unknown'}",
                    m.descriptor.digest.hex[:12],
                    gc.human_size(m.content_size),
                    extra,
                ]
            )
            for j, a in enumerate(m.attestations):
                stem = "   " if last else "│  "
                abranch = "└─" if j == len(m.attestations) - 1 else "├─"
                rows.append(
                    [
                        f"{stem}{abranch} attestation",
                        a.descriptor.digest.hex[:12],
                        gc.human_size(a.content_size),
                        "",
                    ]
                )
    return table(rows)


# -- inspect -----------------------------------------------------------------------------


def _inspect_one(store: Store, name: str, platform: Platform | None) -> dict[str, Any]:
    target = store.resolve(name)
    try:
        manifest_desc = store.select_platform(target, platform)
    except NotFound:
        # Without --platform, an image lacking the host's platform still shows its first one,
        # as docker inspect does.
        present = [d for _, d in store.platform_manifests(target) if store.content.exists(d.digest)]
        if platform is not None or not present:
            raise
        manifest_desc = present[0]
    manifest = store.manifest(manifest_desc)
    config = store.config(manifest.config)
    records = store.images().by_digest(target.digest)
    names = [Reference.parse(r.name) for r in records if not r.dangling]
    tags = [n.familiar() for n in names if n.digest is None]
    # As docker shows them: each repository with the image's digest.
    digests = sorted({f"{n.familiar_name}@{target.digest}" for n in names})
    cfg = config.config.to_json()
    return {
        "Id": str(manifest.config.digest)
        if mediatype.is_manifest(target.media_type)
        else str(target.digest),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": config.created,
        "Author": config.author,
        "Architecture": config.platform.architecture,
        "Os": config.platform.os,
        **({"Variant": config.platform.variant} if config.platform.variant else {}),
        "Size": sum(layer.size for layer in manifest.layers),
        "Config": cfg,
        "RootFS": {"Type": "layers", "Layers": [str(d) for d in config.diff_ids]},
        "Descriptor": target.to_json(),
        "Manifest": manifest_desc.to_json(),
        "Platforms": [str(p) for p, _ in store.platform_manifests(target)],
        "History": [h.to_json() for h in config.history],
    }


def cmd_inspect(args: argparse.Namespace) -> int:
    platform = Platform.parse(args.platform) if args.platform else None
    out = []
    missing: list[str] = []
    with open_store(args) as store:
        for name in args.refs:
            try:
                store.resolve(name)
            except NotFound:
                missing.append(name)  # as docker: the others are still shown
                continue
            out.append(_inspect_one(store, name, platform))
    if args.format:
        for item in out:
            print(gotemplate.render(args.format, item))
    else:
        print(json.dumps(out, indent=4))
    for name in missing:
        print(f"ERROR: No such image: {name}", file=sys.stderr)
    return 1 if missing else 0


# -- tag / rmi / prune -------------------------------------------------------------------


def cmd_tag(args: argparse.Namespace) -> int:
    new = Reference.parse(args.target)
    if new.digest is not None:
        raise InvalidArgument(
            f"refusing to create a tag with a digest reference: {args.target}",
            hint="a tag names an image by NAME[:TAG]; a digest already names its content",
        )
    with open_store(args) as store:
        target = store.resolve(args.source)
        store.set_image(str(new), target)
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    code = 0
    with open_store(args) as store:
        for name in args.refs:
            try:
                target = store.resolve(name)
            except NotFound as exc:
                if args.force:
                    continue
                print(f"Error response from daemon: {exc.message}", file=sys.stderr)
                code = 1
                continue
            with store.edit_images() as images:
                records = images.by_digest(target.digest)
                try:
                    ref = str(Reference.parse(name))
                except BaleError:
                    ref = ""
                named = [r for r in records if r.name == ref]
                tagged = [r for r in records if not r.dangling]
                if not named and len(tagged) > 1 and not args.force:
                    # As docker: an ID names several images' worth of tags only with -f.
                    print(
                        f"Error response from daemon: conflict: unable to delete "
                        f"{target.digest.hex[:12]} (must be forced) - image is referenced in "
                        "multiple repositories",
                        file=sys.stderr,
                    )
                    code = 1
                    continue
                # By ID: remove every name of it; by name: only that name.
                for r in named or records:
                    images.delete(r.name)
                    if not r.dangling:
                        print(f"Untagged: {Reference.parse(r.name).familiar()}")
            # Docker names what it deleted by image ID: a plain manifest's is its config's.
            image_id = str(target.digest)
            if mediatype.is_manifest(target.media_type):
                image_id = str(store.manifest(target).config.digest)
            report = gc.collect(store)
            if target.digest in report.removed:
                print(f"Deleted: {image_id}")
    return code


def cmd_prune(args: argparse.Namespace) -> int:
    """Dangling images, or with -a every image (bale has no containers that could use one),
    then the content nothing refers to; reported as docker reports it."""
    lines: list[str] = []
    with open_store(args) as store:
        with store.edit_images() as images:
            for r in images.all():
                if r.dangling or args.all:
                    images.delete(r.name)
                    if not r.dangling:
                        lines.append(f"untagged: {Reference.parse(r.name).familiar()}")
        report = gc.collect(store)
    lines += [f"deleted: {digest}" for digest in report.removed]
    if lines:
        print("Deleted Images:")
        print("\n".join(lines))
        print()
    print(f"Total reclaimed space: {gc.human_size(report.bytes_freed + report.ingest_bytes_freed)}")
    return 0


# -- save / load / import ----------------------------------------------------------------


def cmd_save(args: argparse.Namespace) -> int:
    if args.output is None and sys.stdout.isatty():
        raise InvalidArgument(
            "cowardly refusing to write an archive to a terminal",
            hint="use -o FILE or redirect stdout",
        )
    dest = Path(args.output) if args.output else None
    with open_store(args) as store:
        entries = []
        for name in args.refs:
            target = store.resolve(name)
            try:
                full = str(Reference.parse(name))
                if store.images().find(full) is None:
                    full = ""
            except BaleError:
                full = ""
            entries.append(SaveEntry(full, target))
        with atomic_output(dest, sys.stdout.buffer) as out:
            if args.format == "oci":
                write_oci_archive(store, entries, out)
            else:
                # One platform of each image; names of the same image share its entry.
                platform = Platform.parse(args.platform) if args.platform else host_platform()
                grouped: dict[str, tuple[list[str], Descriptor]] = {}
                for e in entries:
                    manifest = _plain(store.select_platform(e.target, platform))
                    names, _ = grouped.setdefault(str(manifest.digest), ([], manifest))
                    names.append(e.name)
                write_docker_archive(store, list(grouped.values()), out)
    return 0


def _plain(desc: Descriptor) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size)


def cmd_load(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if args.input:
            try:
                stream: BinaryIO = open(args.input, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise InvalidArgument(f"cannot read {args.input}: {exc.strerror}") from None
        else:
            stream = sys.stdin.buffer
        try:
            loaded = load_archive(store, stream)
        finally:
            if args.input:
                stream.close()
        unpack_arrived(store, args, [item.target for item in loaded])
    if not args.quiet:
        for item in loaded:
            if item.name:
                print(f"Loaded image: {Reference.parse(item.name).familiar()}")
            else:
                print(f"Loaded image ID: {item.target.digest}")
    return 0


def import_created(value: str | None) -> float | None:
    """`--created` (RFC 3339, or seconds), else SOURCE_DATE_EPOCH, else None (now)."""
    if value:
        if value.strip().isdigit():
            return float(source_date_epoch(value))
        when = parse_time(value)
        if when is None:
            raise InvalidArgument(
                f"invalid --created {value!r}",
                hint="use an RFC 3339 time (2024-01-01T00:00:00Z) or seconds since 1970",
            )
        return when
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return float(source_date_epoch(epoch)) if epoch else None


def cmd_import(args: argparse.Namespace) -> int:
    platform = require_known(Platform.parse(args.platform)) if args.platform else host_platform()
    name = str(Reference.parse(args.ref))
    created = import_created(args.created)
    with open_store(args) as store:
        if args.source == "-":
            target = import_rootfs(
                store, sys.stdin.buffer, name, platform, message=args.message, created=created
            )
        else:
            try:
                f = open(args.source, "rb")  # noqa: SIM115
            except OSError as exc:
                raise InvalidArgument(f"cannot read {args.source}: {exc.strerror}") from None
            with f:
                target = import_rootfs(
                    store, f, name, platform, message=args.message, created=created
                )
        unpack_arrived(store, args, [target])
    print(target.digest)
    return 0
