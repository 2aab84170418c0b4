"""File modes as COPY --chmod writes them: octal (`755`) or symbolic (`u+x`, `a=rX,go-w`),
as Dockerfile 1.14 reads them. The frontend validates with it; the builder applies it."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable

from bale.errors import InvalidArgument

# --chmod as a function of a source's mode and whether it is a directory.
Mode = Callable[[int, bool], int]

_SYMBOLIC = re.compile(r"^([ugoa]*)([-+=])([rwxXst]*)$")


def parse_chmod(text: str) -> Mode | None:
    """--chmod: octal (`755`) or symbolic (`u+x`, `a=rX,go-w`), as Dockerfile 1.14 reads it."""
    if not text:
        return None
    if text[0].isdigit():
        # BuildKit's wording for anything that looks numeric and is not a mode.
        if not re.fullmatch(r"[0-7]+", text) or int(text, 8) > 0o7777:
            raise InvalidArgument(
                f"invalid chmod parameter: '{text}'. it should be octal string and between "
                "0 and 07777",
                hint="use an octal mode (0755) or a symbolic one (u+x, a=rX, go-w)",
            )
        fixed = int(text, 8)
        return lambda _mode, _is_dir: fixed
    clauses = []
    for clause in text.split(","):
        found = _SYMBOLIC.match(clause)
        if found is None:
            raise InvalidArgument(
                f"invalid chmod parameter {text!r}",
                hint="use an octal mode (0755) or a symbolic one (u+x, a=rX, go-w)",
            )
        clauses.append((found.group(1) or "a", found.group(2), found.group(3)))

    def apply(mode: int, is_dir: bool) -> int:
        perm = stat.S_IMODE(mode)
        for who, op, what in clauses:
            mask = 0
            if "u" in who or "a" in who:
                mask |= 0o4700
            if "g" in who or "a" in who:
                mask |= 0o2070
            if "o" in who or "a" in who:
                mask |= 0o1007
            bits = 0
            for flag in what:
                bits |= {"r": 0o444, "w": 0o222, "x": 0o111, "s": 0o6000, "t": 0o1000}.get(flag, 0)
                if flag == "X" and (is_dir or perm & 0o111):
                    bits |= 0o111
            bits &= mask
            if op == "+":
                perm |= bits
            elif op == "-":
                perm &= ~bits
            else:
                perm = (perm & ~mask) | bits
        return perm

    return apply
