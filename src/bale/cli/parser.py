"""The argument parser every bale command uses: no abbreviated options (a typo must not
become another flag, as in buildx), and an unknown option named with the usage of the
subcommand it was given to, not the top-level one."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


class BaleParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and " " in self.prog:
            # A subcommand (prog "bale build"): its own usage says what it takes.
            flags = [e.partition("=")[0] for e in extras if e.startswith("-") and e != "-"]
            if flags:
                self.error("unknown flag: " + " ".join(flags))
            self.error("unrecognized arguments: " + " ".join(extras))
        return parsed, extras
