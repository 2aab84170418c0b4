"""`bale history`: the build records, as `docker buildx history` lists and shows them, plus
the HTML report (`report`) and the whole log of any step (`logs --step N`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bale.cli.common import ago, open_store, table
from bale.errors import InvalidArgument, NotFound
from bale.oci.digest import Digest
from bale.store.history import History, HistoryEntry, parse_duration, read_log
from bale.store.local import Store

_STATUS = {"completed": "Completed", "error": "Error", "canceled": "Canceled"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = sub.add_parser("history", help="build records (docker buildx history)")
    hsub = history.add_subparsers(dest="history_command", metavar="COMMAND")
    hsub.required = True
    ls = hsub.add_parser("ls", help="list build records")
    ls.add_argument("--format", default="table", help="table or json (one object per line)")
    ls.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY[=|!=|<|>]VALUE",
        help="ref, name, status; startedAt, completedAt (time or age like 2h), duration (e.g. 30s)",
    )
    ls.add_argument("--no-trunc", action="store_true", help="accepted for buildx parity")
    ls.set_defaults(func=cmd_ls)
    inspect = hsub.add_parser("inspect", help="show a build record")
    inspect.add_argument("ref", nargs="?", default="^0", metavar="REF")
    inspect.add_argument("--format", default="pretty", help="pretty or json")
    inspect.set_defaults(func=cmd_inspect)
    logs = hsub.add_parser("logs", help="print a build's step logs, whole")
    logs.add_argument("ref", nargs="?", default="^0", metavar="REF")
    logs.add_argument(
        "--step",
        type=int,
        default=None,
        metavar="N",
        help="only step N's output, as the process wrote it",
    )
    logs.add_argument("--progress", default="plain", choices=("plain",))
    logs.set_defaults(func=cmd_logs)
    rm = hsub.add_parser("rm", help="remove build records")
    rm.add_argument("refs", nargs="*", metavar="REF")
    rm.add_argument("--all", action="store_true")
    rm.set_defaults(func=cmd_rm)
    export = hsub.add_parser("export", help="write build records to one file")
    export.add_argument("refs", nargs="*", metavar="REF")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="- for stdout")
    export.add_argument("--all", action="store_true")
    export.set_defaults(func=cmd_export)
    imp = hsub.add_parser("import", help="load build records from an exported file")
    imp.add_argument("file", metavar="FILE")
    imp.set_defaults(func=cmd_import)
    report = hsub.add_parser("report", help="write a self-contained HTML report of a build")
    report.add_argument("ref", nargs="?", default="^0", metavar="REF")
    report.add_argument("-o", "--output", required=True, metavar="FILE")
    report.add_argument(
        "--compare", default="", metavar="REF2", help="show what changed since build REF2"
    )
    report.set_defaults(func=cmd_report)


# -- helpers -------------------------------------------------------------------------------


def load(entry: HistoryEntry) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(entry.record)
    return record


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:2d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:2d}m {secs:2d}s"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def counts(record: dict[str, Any]) -> tuple[int, int, int]:
    """(total, completed, cached) steps, as buildx counts them."""
    steps = [s for s in record.get("steps", []) if s.get("status") != "resolved"]
    done = [s for s in steps if s.get("status") in ("cached", "executed")]
    cached = [s for s in steps if s.get("status") == "cached"]
    return len(steps), len(done), len(cached)


def summary(entry: HistoryEntry) -> dict[str, Any]:
    record = load(entry)
    total, completed, cached = counts(record)
    out: dict[str, Any] = {
        "ref": entry.id,
        "name": entry.name,
        "status": _STATUS.get(entry.status, entry.status),
        "created_at": _iso(entry.created),
        "completed_at": _iso(entry.completed),
        "duration": round(entry.completed - entry.created, 3),
        "total_steps": total,
        "completed_steps": completed,
        "cached_steps": cached,
    }
    if record.get("error"):
        out["error"] = record["error"].get("message", "")
    return out


def _time_value(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time() - parse_duration(text)


def _filter(text: str) -> Callable[[HistoryEntry], bool]:
    m = re.fullmatch(r"([A-Za-z]+)(!=|=|<|>)(.*)", text)
    if not m:
        raise InvalidArgument(
            f"invalid filter {text!r}", hint="use KEY=VALUE, KEY!=VALUE, KEY<VALUE or KEY>VALUE"
        )
    key, op, value = m.groups()
    if key in ("ref", "name", "status"):
        if op not in ("=", "!="):
            raise InvalidArgument(f"filter {key} takes = or !=")

        def field(e: HistoryEntry) -> str:
            return {"ref": e.id, "name": e.name, "status": e.status}[key]

        want = value.lower() if key == "status" else value
        if key == "ref":
            return lambda e: e.id.startswith(want) == (op == "=")
        return lambda e: (field(e) == want) == (op == "=")
    if key in ("startedAt", "completedAt", "duration"):
        if op not in ("<", ">"):
            raise InvalidArgument(f"filter {key} takes < or >")
        if key == "duration":
            limit = parse_duration(value)

            def number(e: HistoryEntry) -> float:
                return e.completed - e.created
        else:
            limit = _time_value(value)

            def number(e: HistoryEntry) -> float:
                return e.created if key == "startedAt" else e.completed

        return (lambda e: number(e) < limit) if op == "<" else (lambda e: number(e) > limit)
    raise InvalidArgument(
        f"unknown filter {key!r}", hint="ref, name, status, startedAt, completedAt, duration"
    )


def _selected(store: Store, refs: list[str], everything: bool) -> list[HistoryEntry]:
    history = History(store)
    if everything:
        return history.entries()
    if not refs:
        raise InvalidArgument("give a record reference, or --all")
    return [history.resolve(ref) for ref in refs]


# -- commands ------------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    filters = [_filter(f) for f in args.filter]
    with open_store(args) as store:
        entries = [e for e in History(store).entries() if all(f(e) for f in filters)]
    if args.format == "json":
        for entry in entries:
            print(json.dumps(summary(entry)))
        return 0
    if args.format != "table":
        raise InvalidArgument(f"unknown --format {args.format!r}", hint="table or json")
    rows = [("BUILD ID", "NAME", "STATUS", "CREATED AT", "DURATION")]
    for e in entries:
        rows.append(
            (
                e.id,
                e.name,
                _STATUS.get(e.status, e.status),
                ago(e.created),
                duration(e.completed - e.created),
            )
        )
    print(table(rows))
    return 0


def inspect_text(entry: HistoryEntry) -> str:
    record = load(entry)
    request = record.get("request", {})
    total, completed, cached = counts(record)
    share = f" ({round(100 * cached / total)}% cached)" if total else ""
    rows = [
        ("Name:", entry.name),
        ("Context:", request.get("context", "")),
        ("Dockerfile:", request.get("dockerfile", "")),
    ]
    if request.get("target"):
        rows.append(("Target:", request["target"]))
    rows.append(("Platforms:", ", ".join(request.get("platforms", []))))
    if request.get("build_args"):
        rows.append(("Build Args:", ", ".join(request["build_args"])))
    if request.get("secrets"):
        rows.append(("Secrets:", ", ".join(request["secrets"])))
    rows += [
        ("Started:", datetime.fromtimestamp(entry.created).strftime("%Y-%m-%d %H:%M:%S")),
        ("Duration:", duration(entry.completed - entry.created)),
        ("Build Steps:", f"{completed}/{total}{share}"),
        ("Status:", _STATUS.get(entry.status, entry.status)),
    ]
    results = record.get("results", {})
    if results.get("digest"):
        rows.append(("Image:", results["digest"]))
    width = max(len(k) for k, _ in rows) + 1
    out = [f"{k:<{width}}{v}".rstrip() for k, v in rows]
    warnings = record.get("warnings", [])
    if warnings:
        out += ["", f"Warnings: {len(warnings)}"] + [f"  {w}" for w in warnings]
    error = record.get("error")
    if error:
        out += ["", f"Error: {error.get('message', '')}"]
        if error.get("hint"):
            out.append(f"hint: {error['hint']}")
        source = error.get("source")
        if source:
            start, end = source["start"], source["end"]
            where = f"{source['filename']}:{start}" + (f"-{end}" if end != start else "")
            out += ["", where, "-" * 20]
            numbers = [n for n, _ in error.get("lines", [])]
            pad = len(str(max(numbers))) if numbers else 1
            for n, text in error.get("lines", []):
                marker = ">>>" if start <= n <= end else "   "
                out.append(f" {n:>{pad + 2}} | {marker} {text}".rstrip())
            out.append("-" * 20)
        failed = [s for s in record.get("steps", []) if s.get("status") == "error"]
        for step in failed:
            log = step.get("log")
            lines = f", {log['lines']} log lines" if log else ""
            out.append(
                f"Failed step: #{step['n']} {step['name']}{lines} "
                f"(bale history logs {entry.id} --step {step['n']})"
            )
    return "\n".join(out)


def cmd_inspect(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        entry = History(store).resolve(args.ref)
    if args.format == "json":
        record = load(entry)
        total, completed, cached = counts(record)
        record.update(
            NumTotalSteps=total,
            NumCompletedSteps=completed,
            NumCachedSteps=cached,
            Status=_STATUS.get(entry.status, entry.status),
        )
        print(json.dumps(record, indent=2))
        return 0
    if args.format != "pretty":
        raise InvalidArgument(f"unknown --format {args.format!r}", hint="pretty or json")
    print(inspect_text(entry))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    with open_store(args) as store:
        entry = History(store).resolve(args.ref)
        steps = load(entry).get("steps", [])
        if args.step is not None:
            chosen = [s for s in steps if s.get("n") == args.step]
            if not chosen:
                raise NotFound(
                    f"build {entry.id} has no step {args.step}",
                    hint=f"it has steps 1 to {len(steps)}",
                )
            log = chosen[0].get("log")
            if log:
                for chunk in read_log(store, Digest.parse(log["digest"])):
                    out.write(chunk)
            out.flush()
            return 0
        for step in steps:
            n = step["n"]
            out.write(f"#{n} {step['name']}\n".encode())
            if step.get("reason"):
                out.write(f"#{n} cache miss: {step['reason']}\n".encode())
            log = step.get("log")
            if log:
                pending = b""
                for chunk in read_log(store, Digest.parse(log["digest"])):
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        out.write(b"#%d %s\n" % (n, line))
                if pending:
                    out.write(b"#%d %s\n" % (n, pending))
            out.write(_step_end(step).encode())
        out.flush()
    return 0


def _step_end(step: dict[str, Any]) -> str:
    n, status = step["n"], step.get("status")
    if status == "cached":
        return f"#{n} CACHED\n\n"
    if status == "error":
        return f"#{n} ERROR: {step.get('error', '')}\n\n"
    if status == "canceled":
        return f"#{n} CANCELED\n\n"
    took = (step.get("completed") or 0) - (step.get("started") or 0)
    return f"#{n} DONE {took:.1f}s\n\n"


def cmd_rm(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        entries = _selected(store, args.refs, args.all)
        History(store).remove(e.id for e in entries)
    for e in entries:
        print(e.id)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bale.store.history_archive import export_records

    with open_store(args) as store:
        entries = _selected(store, args.refs or ["^0"], args.all)
        if args.output == "-":
            export_records(store, entries, sys.stdout.buffer)
        else:
            target = Path(args.output)
            partial = target.with_name(target.name + ".partial")
            try:
                with open(partial, "wb") as out:
                    export_records(store, entries, out)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bale.store.history_archive import import_records

    path = Path(args.file)
    if not path.is_file():
        raise NotFound(f"{args.file}: no such file")
    with open_store(args) as store:
        for record_id in import_records(store, path):
            print(record_id)
    return 0


def write_report(store: Store, ref: str, target: Path, compare: str = "") -> None:
    from bale.exporters.history_report import render_report

    history = History(store)
    entry = history.resolve(ref)
    other = load(history.resolve(compare)) if compare else None
    try:
        html = render_report(load(entry), other, lambda d: b"".join(read_log(store, d)))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"build record {entry.id} is damaged: {exc!r}") from None
    partial = target.with_name(target.name + ".partial")
    try:
        partial.write_text(html, encoding="utf-8")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def cmd_report(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        write_report(store, args.ref, Path(args.output), compare=args.compare)
    return 0
