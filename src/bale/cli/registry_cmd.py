"""Registry commands: pull, push, login, logout, imagetools create/inspect."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading

from bale.cli import gotemplate, imagetools_format
from bale.cli.common import add_unpack_flag, open_registries, open_store, unpack_arrived
from bale.errors import InvalidArgument, NotFound
from bale.oci import mediatype
from bale.oci.manifest import Index
from bale.oci.platform import Platform
from bale.oci.reference import Reference
from bale.registry import imagetools
from bale.registry.client import RemoteDocument, parse_remote
from bale.registry.credentials import Credentials, DockerConfig
from bale.registry.login import login, logout
from bale.registry.pulling import pull
from bale.registry.push import push_image
from bale.registry.transfer import ProgressEvent


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pull", help="download an image from a registry")
    p.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--platform", help="platforms to fetch, comma-separated (default: host)")
    group.add_argument("-a", "--all-platforms", action="store_true", help="fetch every platform")
    add_unpack_flag(p)
    _common(p)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("push", help="upload an image to a registry")
    p.add_argument("ref", metavar="NAME[:TAG]")
    _common(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("login", help="log in to a registry")
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")
    p.set_defaults(func=cmd_logout)

    tools = sub.add_parser("imagetools", help="work on images in a registry")
    tsub = tools.add_subparsers(dest="imagetools_command", metavar="COMMAND")
    tsub.required = True
    p = tsub.add_parser("create", help="create an index from source images")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("-t", "--tag", action="append", default=[], dest="tags", metavar="REF")
    p.add_argument("--dry-run", action="store_true", help="print the index instead of pushing")
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")
    p.set_defaults(func=cmd_imagetools_create)
    p = tsub.add_parser("inspect", help="show an image in a registry")
    p.add_argument("ref", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--raw", action="store_true", help="print the manifest or index as is")
    p.add_argument(
        "--format",
        default="",
        help="Go template: .Name, .Manifest, .Image, .Provenance, .SBOM (buildx's)",
    )
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")
    p.set_defaults(func=cmd_imagetools_inspect)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")


_WORDS = {
    "pull": {"done": "Pull complete", "exists": "Already exists"},
    "push": {"done": "Pushed", "exists": "Layer already exists", "mounted": "Mounted"},
}


class _Printer:
    """Per-blob lines on stdout, as `docker pull` shows them (workers call it concurrently)."""

    def __init__(self, verb: str, quiet: bool) -> None:
        self._words = _WORDS[verb]
        self._quiet = quiet
        self._lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        word = self._words.get(event.action)
        if word is None or self._quiet:
            return
        with self._lock:
            print(f"{event.digest.short}: {word}", flush=True)


def cmd_pull(args: argparse.Namespace) -> int:
    ref = Reference.parse(args.ref)
    platforms = [Platform.parse(p) for p in args.platform.split(",")] if args.platform else []
    if not args.quiet:
        print(f"{ref.tag or ref.digest}: Pulling from {ref.path}", flush=True)
    with open_store(args) as store, open_registries(args) as registries:
        before = store.images().find(str(ref))
        result = pull(
            store,
            ref,
            registries=registries,
            platforms=platforms,
            all_platforms=args.all_platforms,
            progress=_Printer("pull", args.quiet),
        )
        unpack_arrived(store, args, [result.target])
    if not args.quiet:
        print(f"Digest: {result.target.digest}")
        if before is not None and before.target.digest == result.target.digest:
            print(f"Status: Image is up to date for {ref.familiar()}")
        else:
            print(f"Status: Downloaded newer image for {ref.familiar()}")
    print(str(ref))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    ref = Reference.parse(args.ref)
    with open_store(args) as store, open_registries(args) as registries:
        record = store.images().find(str(ref))
        if record is None:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar()}")
        if not args.quiet:
            print(f"The push refers to repository [{ref.name}]", flush=True)
        result = push_image(
            store,
            record.target,
            ref,
            registries=registries,
            progress=_Printer("push", args.quiet),
        )
    desc = result.descriptor
    if args.quiet:
        print(str(ref))  # as `docker push -q`: the reference pushed
    else:
        label = ref.tag or (str(ref.digest) if ref.digest else "latest")
        print(f"{label}: digest: {desc.digest} size: {desc.size}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    if args.password and args.password_stdin:
        raise InvalidArgument("--password and --password-stdin are mutually exclusive")
    username = args.username
    password = args.password
    if args.password_stdin:
        if not username:
            raise InvalidArgument("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument(
                "cannot prompt for a username: stdin is not a terminal",
                hint="pass -u USER and --password-stdin",
            )
        username = input("Username: ").strip()
    if not password:
        if not sys.stdin.isatty():
            raise InvalidArgument(
                "cannot prompt for a password: stdin is not a terminal",
                hint="pass --password-stdin",
            )
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise InvalidArgument("username and password are required")
    if args.password:
        print(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
            file=sys.stderr,
        )
    with open_registries(args) as registries:
        login(registries, args.server, Credentials(username, password))
    print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    host, had = logout(args.server, DockerConfig())
    if had:
        print(f"Removing login credentials for {host}")
    else:
        print(f"Not logged in to {host}")
    return 0


def cmd_imagetools_create(args: argparse.Namespace) -> int:
    if not args.tags and not args.dry_run:
        raise InvalidArgument("imagetools create needs at least one -t/--tag")
    sources = [Reference.parse(s) for s in args.sources]
    targets = [Reference.parse(t) for t in args.tags]
    with open_registries(args) as registries:
        doc = imagetools.create(registries, sources, targets, dry_run=args.dry_run)
    if args.dry_run:
        print(json.dumps(json.loads(doc.data), indent=2))
    else:
        for target in targets:
            print(f"{target}@{doc.descriptor.digest}", file=sys.stderr)
        print(doc.descriptor.digest)
    return 0


def cmd_imagetools_inspect(args: argparse.Namespace) -> int:
    if args.format and args.raw:
        raise InvalidArgument("format and raw cannot be used together")
    ref = Reference.parse(args.ref)
    templated = bool(args.format) and not imagetools_format.is_whole_manifest(args.format)
    with open_registries(args) as registries:
        if templated:
            inspection = imagetools.load(registries, ref)
            data = imagetools_format.template_input(inspection, args.ref)
            # As buildx: the template's output exactly, without a newline of its own.
            text = gotemplate.render(
                args.format, data, funcs=imagetools_format.FUNCS, escapes=False
            )
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
        doc = imagetools.inspect(registries, ref)
    if args.raw:
        sys.stdout.buffer.write(doc.data)
        sys.stdout.buffer.flush()
        return 0
    print(_manifest_text(ref, doc))
    return 0


def _manifest_text(ref: Reference, doc: RemoteDocument) -> str:
    """buildx's default output: the name, media type and digest, then each manifest."""
    desc = doc.descriptor
    lines = [
        f"{'Name:':<11}{ref}",
        f"{'MediaType:':<11}{desc.media_type}",
        f"{'Digest:':<11}{desc.digest}",
    ]
    if mediatype.is_index(desc.media_type):
        lines += ["", "Manifests:"]
        # buildx names each manifest by the reference and its digest (name:tag@sha256:...).
        base = f"{ref.name}:{ref.tag}" if ref.tag else ref.name
        for child in parse_remote(Index.parse, doc.data, f"{ref}@{desc.digest}").manifests:
            lines.append(f"  {'Name:':<11}{base}@{child.digest}")
            lines.append(f"  {'MediaType:':<11}{child.media_type}")
            if child.platform is not None:
                lines.append(f"  {'Platform:':<11}{child.platform}")
            if child.annotations:
                lines.append("  Annotations:")
                lines.extend(f"    {key}: {value}" for key, value in child.annotations)
            lines.append("")
    return "\n".join(lines).rstrip()
