"""`bale build --verify-reproducible`: build the image twice, each time in a fresh store (no
build cache, no cache mounts, no snapshots; the base images copied in from the store by
hard link), and compare the two results byte for byte. Either the index digest is the same,
or the first differing platform, layer and file is named.

It needs SOURCE_DATE_EPOCH (the build argument or the environment variable): without it,
every build's times differ by construction. Nothing is exported: the outputs of a normal
build are what a verified Dockerfile is then built into.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING

from bale.builder.build import run_build
from bale.cli.attest_flags import attest_options, warn_attestations
from bale.cli.build_run import build_options
from bale.cli.common import open_store
from bale.cli.progress_render import TtyRenderer, renderer
from bale.errors import FailedPrecondition, InvalidArgument
from bale.exporters.image import assemble
from bale.exporters.image_diff import first_difference
from bale.exporters.outputs import OutputSpec
from bale.frontends.dockerfile.parser import ParsedDockerfile
from bale.oci.platform import Platform
from bale.store.local import Store
from bale.trees import remove_tree

if TYPE_CHECKING:
    from bale.cli.build_cmd import BuildRequest

_WORK = "verify-reproducible-"


def _remove_stale(parent: os.PathLike[str]) -> None:
    """Work directories of verifications whose process is gone."""
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    for name in names:
        pid = name.removeprefix(_WORK)
        if not name.startswith(_WORK) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            remove_tree(os.path.join(parent, name), ignore_errors=True)
        except PermissionError:
            pass


def verify(
    args: argparse.Namespace, request: BuildRequest, files: dict[Platform, ParsedDockerfile]
) -> int:
    if request.outputs or request.push or request.load:
        raise InvalidArgument(
            "--verify-reproducible builds twice and compares the results; it exports nothing",
            hint="drop -o/--push/--load, or build without --verify-reproducible",
        )
    if not (request.build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")):
        raise InvalidArgument(
            "--verify-reproducible needs SOURCE_DATE_EPOCH: without it every build's times differ",
            hint="export SOURCE_DATE_EPOCH=$(git log -1 --pretty=%ct), or pass "
            "--build-arg SOURCE_DATE_EPOCH=SECONDS",
        )
    options = dataclasses.replace(build_options(request, files), no_cache=True)
    attest = attest_options(request, [OutputSpec("image")])
    quiet = request.quiet or request.progress == "quiet"
    progress = "quiet" if request.quiet else request.progress
    warn_attestations(renderer(progress), attest, quiet)
    with open_store(args) as user, ExitStack() as stack:
        parent = user.root / "tmp"
        _remove_stale(parent)
        work = parent / f"{_WORK}{os.getpid()}"
        stack.callback(remove_tree, work, ignore_errors=True)
        outcomes = []
        for n in (1, 2):
            if not quiet:
                print(f"building in a fresh store ({n} of 2)", file=sys.stderr)
            store = stack.enter_context(Store(work / str(n)))
            store.set_mode(user.mode())
            # A renderer per build: the second one's steps are shown as they run.
            sink = renderer(progress)
            try:
                with store.lease() as lease:
                    fresh = dataclasses.replace(options, base_store=user)
                    result = run_build(store, fresh, sink, lease)
                    outcomes.append((store, assemble(store, result, lease, attest)))
            finally:
                if isinstance(sink, TtyRenderer):
                    sink.close()
        (first, a), (second, b) = outcomes
        difference = first_difference(first, a.target, second, b.target)
    if difference is not None:
        raise FailedPrecondition(
            f"the build is not reproducible: {a.target.digest} != {b.target.digest}; "
            f"first difference: {difference}",
            hint="see docs/attestations.md, 'Reproducible builds'",
        )
    print(f"reproducible: {a.target.digest}")
    return 0
