"""The secrets leak scan (root only): a build with a secret file mount, a secret env mount
and a secret-looking build argument, exported to the store, a local directory (with
provenance in max mode) and an OCI tar; then every byte bale wrote is searched for the
secret values — every blob in the content store and every file under the state directory
(snapshots, the metadata database, build history), every output, and the progress logs —
decompressing gzip and zstd and reading into tar archives on the way.

The steps prove they saw the secrets: they record the secrets' sha256, which the scan finds.
And the scan proves it would see a leak: a random file copied from the context (the canary)
must be found in the store's compressed layers, the local output and the OCI tar.

    python -m fuzz.secrets_scan
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import secrets
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from fuzz.harness import bale, busybox_context, leftovers, missing_fixtures

DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY bin/busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN --mount=type=secret,id=file_secret \
    sha256sum /run/secrets/file_secret | cut -d' ' -f1 > /file.sha
RUN --mount=type=secret,id=env_secret,env=ENV_SECRET \
    printf %s "$ENV_SECRET" | sha256sum | cut -d' ' -f1 > /env.sha
RUN --mount=type=secret,id=file_secret,target=/etc/app.key \
    cp /etc/app.key /dev/null && echo ok > /ok
COPY canary.txt /canary.txt
"""

_MAX_DEPTH = 4


def _expand(data: bytes, depth: int = 0) -> Iterator[bytes]:
    """`data`, and what is inside it: decompressed, and each member of a tar archive."""
    yield data
    if depth >= _MAX_DEPTH:
        return
    inner: bytes | None = None
    try:
        if data[:2] == b"\x1f\x8b":
            inner = gzip.decompress(data)
        elif data[:4] == b"\x28\xb5\x2f\xfd":
            inner = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        inner = None
    if inner is not None:
        yield from _expand(inner, depth + 1)
        return
    if len(data) > 262 and data[257:262] == b"ustar":
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar:
                    if member.isfile():
                        f = tar.extractfile(member)
                        if f is not None:
                            yield from _expand(f.read(), depth + 1)
        except (tarfile.TarError, OSError, EOFError):
            pass


@dataclass
class Scan:
    needles: dict[str, bytes]
    files: int = 0
    bytes_read: int = 0
    hits: list[str] = field(default_factory=list)

    def data(self, where: str, data: bytes) -> None:
        self.files += 1
        for part in _expand(data):
            self.bytes_read += len(part)
            for name, needle in self.needles.items():
                if needle in part:
                    self.hits.append(f"{name} in {where}")

    def tree(self, top: Path) -> None:
        for dirpath, _dirs, names in os.walk(top):
            for name in names:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    self.data(str(path), path.read_bytes())
                except OSError as exc:
                    self.hits.append(f"unreadable {path}: {exc}")


@dataclass
class LeakSummary:
    secrets_seen_by_steps: bool = False
    files: int = 0
    bytes_read: int = 0
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def leak_scan(work: Path | None = None, say: Callable[[str], None] = print) -> LeakSummary:
    summary = LeakSummary()
    values = {
        "file secret": "file-" + secrets.token_hex(16),
        "env secret": "env-" + secrets.token_hex(16),
        "build-arg API_TOKEN": "arg-" + secrets.token_hex(16),
    }
    with tempfile.TemporaryDirectory(prefix="bale-leakscan-", dir=work) as tmp:
        base = Path(tmp)
        root = base / "root"
        ctx = busybox_context(base / "ctx", DOCKERFILE)
        (base / "file_secret").write_text(values["file secret"])
        canary = "canary-" + secrets.token_hex(16)
        (ctx / "canary.txt").write_text(canary)
        common = [
            "--secret", f"id=file_secret,src={base / 'file_secret'}",
            "--secret", "id=env_secret,env=BALE_LEAK_ENV_SECRET",
            "--build-arg", f"API_TOKEN={values['build-arg API_TOKEN']}",
        ]  # fmt: skip
        os.environ["BALE_LEAK_ENV_SECRET"] = values["env secret"]
        logs: list[tuple[str, str]] = []
        try:
            runs = [
                ["--progress", "plain", "--no-cache", "-t", "leak/scan:1"],
                ["--progress", "rawjson", "--provenance", "mode=min",
                 "-o", f"type=local,dest={base / 'out-local'}"],
                ["--progress", "plain", "--no-cache", "-o",
                 f"type=oci,dest={base / 'out.tar'}"],
            ]  # fmt: skip
            for extra in runs:
                proc = bale(root, "build", *common, *extra, ".", cwd=ctx)
                logs.append((" ".join(extra), proc.stdout + proc.stderr))
                if proc.returncode != 0:
                    summary.problems.append(f"build {extra} exited {proc.returncode}:\n"
                                            f"{proc.stderr[-3000:]}")  # fmt: skip
            history = bale(root, "history", "ls")
            logs.append(("history ls", history.stdout + history.stderr))
        finally:
            del os.environ["BALE_LEAK_ENV_SECRET"]
        out = base / "out-local"
        want = {
            "file.sha": hashlib.sha256(values["file secret"].encode()).hexdigest(),
            "env.sha": hashlib.sha256(values["env secret"].encode()).hexdigest(),
        }
        got = {n: (out / n).read_text().strip() if (out / n).is_file() else "" for n in want}
        summary.secrets_seen_by_steps = got == want
        if not summary.secrets_seen_by_steps:
            summary.problems.append(f"the steps did not see the secrets: {got} != {want}")
        scan = Scan({**{k: v.encode() for k, v in values.items()}, "canary": canary.encode()})
        scan.tree(root)
        scan.tree(out)
        if (base / "out.tar").is_file():
            scan.data(str(base / "out.tar"), (base / "out.tar").read_bytes())
        else:
            summary.problems.append("no OCI tar was written")
        for what, text in logs:
            scan.data(f"the progress of {what}", text.encode())
        left = leftovers(root)
        if left:
            summary.problems.append("left behind:\n  " + "\n  ".join(left))
        found = [h for h in scan.hits if h.startswith("canary in ")]
        for place in (f"{root}/content", f"{out}/canary.txt", f"{base / 'out.tar'}"):
            if not any(h.startswith(f"canary in {place}") for h in found):
                summary.problems.append(f"the scan did not find the canary in {place}")
        summary.leaks = [h for h in scan.hits if not h.startswith("canary in ")]
        summary.files, summary.bytes_read = scan.files, scan.bytes_read
    for leak in summary.leaks:
        say(f"LEAK {leak}")
    for problem in summary.problems:
        say(f"PROBLEM {problem}")
    say(
        f"secrets leak scan: {summary.files} files ({summary.bytes_read} bytes unpacked), "
        f"steps saw the secrets: {summary.secrets_seen_by_steps}, {len(summary.leaks)} leaks"
    )
    return summary


def main() -> int:
    if os.geteuid() != 0:
        print("secrets leak scan: needs root (mounts, runc)", file=sys.stderr)
        return 2
    reason = missing_fixtures()
    if reason:
        print(f"secrets leak scan: {reason}", file=sys.stderr)
        return 2
    summary = leak_scan()
    return 1 if summary.leaks or summary.problems else 0


if __name__ == "__main__":
    sys.exit(main())
