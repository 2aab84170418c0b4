"""Build records of real builds: a failed two-platform build is listed as failed, keeps the
failing step's whole log (5 MB) and its Dockerfile lines, holds no secret value, and its
HTML report renders in headless Chromium; comparing a cold and a cached build shows the hits."""

from __future__ import annotations

import gzip
import html
import json
import re
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard
from buildhelp import bale, build, example, require_root, require_tool

pytestmark = [pytest.mark.root, pytest.mark.slow]

SECRET = "s3cret-value-from-file"
TOKEN = "tok-9f8e7d6c5b4a"
LOG_BYTES = 5_000_000

DOCKERFILE = f"""\
FROM scratch
ARG TARGETARCH
COPY bin/busybox-${{TARGETARCH}} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ARG API_TOKEN
RUN --mount=type=secret,id=tok cat /run/secrets/tok; echo; echo "token $API_TOKEN"; uname -m
RUN if [ "$(uname -m)" = aarch64 ]; then \\
      yes line-of-log | head -c {LOG_BYTES}; exit 7; fi; \\
    sleep 1; echo ok
"""

FAILED_BAR = (208, 52, 44)  # the report's colour for a failed step


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = require_tool("chromium")
    return subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            "--window-size=1400,1000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def _share(rows: list[bytes], bpp: int, x: float, y: float, width: float, colour: Any) -> float:
    """The share of pixels of `colour` along the middle of a bar drawn at (x, y)."""
    row, hits, xs = rows[int(y) + 6], 0, range(int(x) + 3, int(x + width) - 3)
    for px in xs:
        r, g, b = row[px * bpp : px * bpp + 3]
        hits += abs(r - colour[0]) + abs(g - colour[1]) + abs(b - colour[2]) < 24
    return hits / max(1, len(xs))


MEASURE = """<script>
const lanes = document.querySelector('#timeline .lanes').getBoundingClientRect().width;
const bars = [...document.querySelectorAll('#timeline .bar.executed')].map(b => {
  const r = b.getBoundingClientRect();
  return [+b.dataset.step, r.width, +b.dataset.duration, r.left, r.top, b.className];
});
document.body.dataset.measure = JSON.stringify({lanes, bars});
</script></body>"""


def _secret_free(root: Path, *files: Path) -> None:
    """Neither secret appears in the metadata database, any blob (logs decompressed) or file."""
    texts = [p.read_bytes() for p in root.glob("metadata.db*")]
    for blob in (root / "content" / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        texts.append(data)
        if data[:4] == b"\x28\xb5\x2f\xfd":
            texts.append(zstandard.ZstdDecompressor().stream_reader(data).read())
    for path in files:
        data = path.read_bytes()
        texts.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    for text in texts:
        assert SECRET.encode() not in text and TOKEN.encode() not in text


def test_failed_two_platform_build_record_logs_and_report(tmp_path: Path) -> None:
    require_root()
    context = example("hello", tmp_path / "ctx")
    (context / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "tok").write_text(SECRET + "\n")
    root, report = tmp_path / "root", tmp_path / "report.html"
    proc = build(
        root,
        context,
        "--secret",
        f"id=tok,src={tmp_path / 'tok'}",
        "--build-arg",
        f"API_TOKEN={TOKEN}",
        "--report",
        str(report),
        "-o",
        f"type=local,dest={tmp_path / 'out'}",
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert report.is_file(), "--report is written for a failed build too"

    ls = bale(root, "history", "ls").stdout.splitlines()
    assert ls[0].split() == ["BUILD", "ID", "NAME", "STATUS", "CREATED", "AT", "DURATION"]
    ref = ls[1].split()[0]
    assert ls[1].split()[2] == "Error"
    rows = [
        json.loads(line)
        for line in bale(
            root, "history", "ls", "--format", "json", "--filter", "status=error"
        ).stdout.splitlines()
    ]
    assert [r["ref"] for r in rows] == [ref]
    assert bale(root, "history", "ls", "--filter", "status=completed").stdout.count("\n") == 1

    record: dict[str, Any] = json.loads(
        bale(root, "history", "inspect", ref[:6], "--format", "json").stdout
    )
    failed = [s for s in record["steps"] if s["status"] == "error"]
    assert len(failed) == 1 and failed[0]["platform"] == "linux/arm64"
    assert failed[0]["exit_code"] == 7 and failed[0]["emulation"] == "emulated"
    assert {s["platform"] for s in record["steps"]} == {"linux/amd64", "linux/arm64"}
    assert all(s.get("reason") for s in record["steps"] if s["status"] == "executed")
    assert record["request"]["secrets"] == ["tok"]
    assert record["request"]["build_args"] == ["API_TOKEN"]

    inspect = bale(root, "history", "inspect", "^0").stdout
    assert re.search(r"^Status:\s+Error$", inspect, re.M) and "exit code: 7" in inspect
    assert "Dockerfile:7-9" in inspect
    assert re.search(r"7 \| >>> RUN if \[", inspect), inspect

    # The failing step's log, whole: 5 MB as the process wrote it (its last line ended).
    n = failed[0]["n"]
    log_bytes = _bale_bytes(root, "history", "logs", ref, "--step", str(n))
    expected = (b"line-of-log\n" * (LOG_BYTES // 12 + 1))[:LOG_BYTES]
    assert log_bytes.rstrip(b"\n") == expected.rstrip(b"\n"), len(log_bytes)
    plain = bale(root, "history", "logs", ref).stdout
    assert "token ****" in plain and f"#{n} ERROR:" in plain

    # Logs are GC roots while the record lives; exported and imported they come back whole.
    bale(root, "builder", "prune", "-f")
    bale(root, "store", "gc")
    archive = tmp_path / "build.dockerbuild"
    bale(root, "history", "export", ref, "-o", str(archive))
    bale(root, "history", "rm", ref)
    assert bale(root, "history", "ls").stdout.count("\n") == 1
    assert bale(root, "history", "import", str(archive)).stdout.split() == [ref]
    assert _bale_bytes(root, "history", "logs", ref, "--step", str(n)) == log_bytes

    _secret_free(root, report, archive)

    # The report: self-contained, and as Chromium renders it.
    page = report.read_text()
    assert "<script" not in page and not re.search(r"\b(src|href)\s*=", page)
    shot = tmp_path / "report.png"
    run = _chromium(
        tmp_path, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", report.as_uri()
    )
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    measured = tmp_path / "measure.html"
    measured.write_text(page.replace("</body>", MEASURE))
    dom = _chromium(tmp_path, "--dump-dom", measured.as_uri()).stdout
    found = re.search(r'data-measure="([^"]*)"', dom)
    assert found, dom[:2000]
    geometry = json.loads(html.unescape(found.group(1)))
    executed = sorted(s["n"] for s in record["steps"] if s["status"] in ("executed", "error"))
    assert sorted(b[0] for b in geometry["bars"]) == executed  # one bar per executed step
    total = record["completed"] - record["created"]
    for _, width, took, *_ in geometry["bars"]:
        expected_width = max(0.0015, took / total) * geometry["lanes"]
        assert abs(width - expected_width) <= 2, (width, expected_width)
    width, height, rows, bpp = _png_pixels(shot.read_bytes())
    assert (width, height) == (1400, 1000)
    # The screenshot shows the bars where the DOM has them, in their colours.
    colours = {"error": FAILED_BAR, "emulated": (224, 138, 30), "native": (47, 111, 208)}
    for step, bar_width, _, x, y, classes in geometry["bars"]:
        if bar_width < 12:
            continue
        kind = next(k for k in colours if k in classes.split())
        share = _share(rows, bpp, x, y, bar_width, colours[kind])
        if step == n:
            print(f"\nfailing bar: {bar_width:.0f}px wide, {share:.0%} red in the screenshot")
        assert share > 0.9, (step, kind, share)
    assert any(b[0] == n and b[1] > 0.5 * geometry["lanes"] for b in geometry["bars"])


def _bale_bytes(root: Path, *args: str) -> bytes:
    import sys

    from buildhelp import env

    proc = subprocess.run(
        [sys.executable, "-m", "bale", "--root", str(root), *args],
        capture_output=True,
        env=env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_compare_of_cold_and_cached_build_shows_the_hits(tmp_path: Path) -> None:
    require_root()
    context = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    out = f"type=local,dest={tmp_path / 'out'}"
    # One native platform: the comparison is what is tested, not emulation.
    build(root, context, "-o", out, platforms=("linux/amd64",))
    build(root, context, "-o", out, platforms=("linux/amd64",))
    cold, warm = (
        json.loads(bale(root, "history", "inspect", ref, "--format", "json").stdout)
        for ref in ("^1", "^0")
    )
    ran = sorted(s["name"] for s in cold["steps"] if s["status"] == "executed")
    assert ran and all(s["status"] in ("cached", "resolved") for s in warm["steps"])
    report = tmp_path / "compare.html"
    bale(root, "history", "report", "^0", "--compare", "^1", "-o", str(report))
    page = report.read_text()
    assert f'id="compare-hits" data-count="{len(ran)}"' in page
    assert 'id="compare-misses" data-count="0"' in page
    hits = html.unescape(page.split('id="compare-hits"')[1].split("</details>")[0])
    for name in ran:
        assert name in hits
