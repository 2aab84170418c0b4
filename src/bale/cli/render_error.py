"""Turn a BaleError into the message a user reads (BuildKit's layout for source errors)."""

from __future__ import annotations

from bale import errors


def snippet(source: errors.SourceRange, lines: tuple[str, ...]) -> list[str]:
    # BuildKit shows the range with up to two lines of context on each side.
    first = max(1, source.start - 2)
    last = min(len(lines), source.end + 2)
    out = [
        f"{source.filename}:{source.start}"
        if source.start == source.end
        else f"{source.filename}:{source.start}-{source.end}",
        "-" * 20,
    ]
    width = len(str(last))
    for number in range(first, last + 1):
        marker = ">>>" if source.start <= number <= source.end else "   "
        out.append(f" {number:>{width + 2}} | {marker} {lines[number - 1]}".rstrip())
    out.append("-" * 20)
    return out


def render(exc: errors.BaleError) -> str:
    parts: list[str] = []
    source = getattr(exc, "source", None)
    lines = getattr(exc, "lines", ())
    if isinstance(source, errors.SourceRange) and lines and source.start <= len(lines):
        parts.extend(snippet(source, lines))
    text = str(exc)
    if text.startswith("ERROR:"):
        parts.append(text)
    else:
        parts.append(f"ERROR: {text}")
    if exc.hint:
        parts.append(f"hint: {exc.hint}")
    return "\n".join(parts)
