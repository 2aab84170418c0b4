"""Dockerfiles from a grammar of real instructions, flags, heredocs and variables, then
mutated the ways hostile input is: huge numbers, unicode digits, deep nesting, long lines,
NULs, unterminated quotes, many stages. Everything is drawn from one `random.Random`, so a
seed reproduces a case exactly."""

from __future__ import annotations

import random
import re

_NAMES = ("a", "b", "build", "base", "s0", "s1", "final", "x-y", "UPPER", "É")
_VARS = ("A", "B", "FOO", "TARGETPLATFORM", "BUILDPLATFORM", "TARGETARCH", "HOME", "PATH", "")
_BASES = (
    "scratch",
    "busybox",
    "busybox:1",
    "alpine:3.19@sha256:" + "a" * 64,
    "onbuild:1",  # the fake resolver gives this one ONBUILD triggers
    "user:1",  # and this one a USER and a WORKDIR
    "localhost:5000/x/y:z",
    "${BASE}",
    "${BASE:-scratch}",
    "$A",
    "",
)
_PLATFORMS = (
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "$BUILDPLATFORM",
    "${TARGETPLATFORM}",
    "windows/amd64",
    "linux/",
    "/",
    "linux/amd64/v99/x",
)
_PATHS = ("/", ".", "a", "/a/b", "../..", "/x/", "*", "a*b?[c]", "${A}/b", "$HOME", "~", "-")
_NUMBERS = (
    "0",
    "1",
    "-1",
    "65535",
    "65536",
    "4294967296",
    "99999999999",
    "0x10",
    "1e9",
    "00",
    "9" * 40,
    "²",
    "٣",
    "１２",
    "1_000",
    "+1",
    " ",
    "",
)
_DURATIONS = ("1s", "30s", "1m30s", "1h", "0s", "-1s", "1.5s", "s", "1x", "9" * 30 + "s", "²s")
_SIGNALS = ("SIGTERM", "TERM", "9", "0", "65", "SIGRTMIN+3", "SIGNOPE", "99999999999", "²")
_CHMODS = ("755", "0644", "u+x", "a=rX,g-w", "8", "7777", "99999999999", "u+", "²")
_CHOWNS = ("0", "0:0", "root", "root:root", "app:staff", "1:", ":1", "99999999999", "²", "-1")


class Grammar:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, seq: tuple[str, ...] | list[str]) -> str:
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def word(self) -> str:
        r = self.rng.random()
        if r < 0.5:
            return self.pick(("hello", "a b", "x=y", "'q'", '"dq"', "\\$A", "--", "é", "*"))
        if r < 0.8:
            return self.var()
        return self.pick(_PATHS)

    def var(self) -> str:
        name = self.pick(_VARS)
        form = self.rng.randrange(8)
        if form == 0:
            return f"${name}"
        if form == 1:
            return f"${{{name}}}"
        mods = (":-", "-", ":+", "+", ":?", "?", "#", "##", "%", "%%", "/", "//", ":")
        return f"${{{name}{self.pick(mods)}{self.pick(('d', '', '*', 'a*b', '$B', '}'))}}}"

    def flag(self, name: str, values: tuple[str, ...]) -> str:
        return f"--{name}={self.pick(values)}"

    def mount(self) -> str:
        kind = self.pick(("cache", "bind", "secret", "tmpfs", "ssh", "nope", ""))
        opts = [f"type={kind}"] if kind else []
        pool = (
            "target=/t",
            "dst=/d",
            "source=s",
            "from=build",
            "id=x",
            "env=X",
            "required",
            "required=false",
            "sharing=locked",
            "sharing=private",
            "sharing=bad",
            "mode=0700",
            f"mode={self.pick(_NUMBERS)}",
            f"uid={self.pick(_NUMBERS)}",
            f"gid={self.pick(_NUMBERS)}",
            f"size={self.pick(_NUMBERS)}{self.pick(('', 'k', 'm', 'g', 'x'))}",
            "rw",
            "readonly",
            "ro=false",
            'target="/q"',
            "target",
            "=",
        )
        for _ in range(self.rng.randrange(4)):
            opts.append(self.pick(pool))
        return "--mount=" + ",".join(opts)

    def heredoc(self, command: bool) -> tuple[str, str]:
        """(the word on the instruction line, the body and terminator lines)."""
        name = self.pick(("EOF", "END", "x", "E O F", ""))
        quote = self.pick(("", "", "'", '"'))
        dash = "-" if self.chance(0.3) else ""
        fd = self.pick(("", "", "", "3", "0", "5" * 5000)) if self.chance(0.2) else ""
        word = f"{fd}<<{dash}{quote}{name}{quote}"
        body = [self.pick(("echo $A", "\techo tabbed", "line", "${A:-x}", "")) for _ in range(3)]
        end = [] if self.chance(0.05) else [("\t" if dash and self.chance(0.5) else "") + name]
        return word, "\n".join(body + end)

    def instruction(self, stages: list[str]) -> str:
        kind = self.pick(_KINDS)
        return getattr(self, f"i_{kind}")(stages)  # type: ignore[no-any-return]

    def i_run(self, stages: list[str]) -> str:
        flags = []
        for _ in range(self.rng.randrange(3)):
            r = self.rng.randrange(4)
            if r == 0:
                flags.append(self.mount())
            elif r == 1:
                flags.append(self.flag("network", ("none", "host", "default", "bad")))
            elif r == 2:
                flags.append(self.flag("security", ("insecure", "sandbox", "x")))
            else:
                flags.append(self.pick(("--device=/dev/null", "--unknown", "--mount")))
        f = " ".join(flags)
        if self.chance(0.2):
            word, body = self.heredoc(True)
            return f"RUN {f} {word}\n{body}"
        if self.chance(0.2):
            return f'RUN {f} ["sh", "-c", "{self.word()}"]'
        return f"RUN {f} echo {self.word()} && true"

    def _copy_flags(self, stages: list[str]) -> str:
        flags = []
        choices = (
            lambda: f"--from={self.pick([*stages, '0', '99', 'busybox', '${A}', ''])}",
            lambda: self.flag("chown", _CHOWNS),
            lambda: self.flag("chmod", _CHMODS),
            lambda: "--link",
            lambda: "--link=false",
            lambda: "--parents",
            lambda: self.flag("exclude", ("*.txt", "**", "[", "a/b")),
            lambda: "--keep-git-dir=true",
            lambda: self.flag("checksum", ("sha256:" + "0" * 64, "sha256:zz", "md5:1")),
            lambda: "--nope",
        )
        for _ in range(self.rng.randrange(3)):
            flags.append(choices[self.rng.randrange(len(choices))]())
        return " ".join(flags)

    def i_copy(self, stages: list[str]) -> str:
        kw = self.pick(("COPY", "ADD"))
        f = self._copy_flags(stages)
        if self.chance(0.15):
            word, body = self.heredoc(False)
            return f"{kw} {f} {word} {self.pick(_PATHS)}\n{body}"
        srcs = " ".join(self.pick(_PATHS) for _ in range(self.rng.randrange(1, 3)))
        if kw == "ADD" and self.chance(0.3):
            srcs = self.pick(("https://example.com/x.tar", "git@github.com:a/b.git#main", srcs))
        if self.chance(0.2):
            return f'{kw} {f} ["{srcs}", "{self.pick(_PATHS)}"]'
        return f"{kw} {f} {srcs} {self.pick(_PATHS)}"

    def i_env(self, stages: list[str]) -> str:
        if self.chance(0.3):
            return f"ENV {self.pick(_VARS) or 'K'} {self.word()}"
        pairs = " ".join(
            f"{self.pick(_VARS) or 'K'}={self.word()}" for _ in range(self.rng.randrange(1, 4))
        )
        return f"ENV {pairs}"

    def i_arg(self, stages: list[str]) -> str:
        name = self.pick(_VARS) or "A"
        return f"ARG {name}" + (f"={self.word()}" if self.chance(0.5) else "")

    def i_label(self, stages: list[str]) -> str:
        key = self.pick(("a", "org.x", '"q k"'))
        return f"LABEL {key}={self.word()}"

    def i_expose(self, stages: list[str]) -> str:
        n = self.pick(_NUMBERS)
        proto = self.pick(("", "/tcp", "/udp", "/sctp", "/x"))
        rng = f"-{self.pick(_NUMBERS)}" if self.chance(0.2) else ""
        return f"EXPOSE {n}{rng}{proto}"

    def i_user(self, stages: list[str]) -> str:
        return f"USER {self.pick((*_CHOWNS, '$A', 'app'))}"

    def i_workdir(self, stages: list[str]) -> str:
        return f"WORKDIR {self.pick(_PATHS)}"

    def i_volume(self, stages: list[str]) -> str:
        return self.pick(("VOLUME /v", 'VOLUME ["/a", "/b"]', "VOLUME", "VOLUME [1]"))

    def i_cmd(self, stages: list[str]) -> str:
        kw = self.pick(("CMD", "ENTRYPOINT"))
        return self.pick(
            (f'{kw} ["sh", "-c", "{self.word()}"]', f"{kw} echo {self.word()}", f"{kw} [", f"{kw}")
        )

    def i_healthcheck(self, stages: list[str]) -> str:
        if self.chance(0.2):
            return "HEALTHCHECK NONE"
        flags = " ".join(
            self.pick(
                (
                    f"--interval={self.pick(_DURATIONS)}",
                    f"--timeout={self.pick(_DURATIONS)}",
                    f"--start-period={self.pick(_DURATIONS)}",
                    f"--start-interval={self.pick(_DURATIONS)}",
                    f"--retries={self.pick(_NUMBERS)}",
                )
            )
            for _ in range(self.rng.randrange(3))
        )
        command = self.pick(("true", '["true"]', ""))
        return f"HEALTHCHECK {flags} CMD {command}"

    def i_stopsignal(self, stages: list[str]) -> str:
        return f"STOPSIGNAL {self.pick(_SIGNALS)}"

    def i_shell(self, stages: list[str]) -> str:
        return self.pick(('SHELL ["/bin/sh", "-c"]', "SHELL /bin/sh", "SHELL []", 'SHELL ["x"]'))

    def i_onbuild(self, stages: list[str]) -> str:
        inner = self.instruction(stages).split("\n", 1)[0]
        return self.pick((f"ONBUILD {inner}", "ONBUILD ONBUILD RUN x", "ONBUILD FROM x"))

    def i_maintainer(self, stages: list[str]) -> str:
        return f"MAINTAINER {self.word()}"

    def i_other(self, stages: list[str]) -> str:
        return self.pick(("FRM scratch", "# comment", "", "\\", "RUN \\", "  ", "COPY", "ADD a"))

    def from_line(self, stages: list[str], name: str | None) -> str:
        parts = ["FROM"]
        if self.chance(0.3):
            parts.append(f"--platform={self.pick(_PLATFORMS)}")
        base = self.pick(_BASES) if not stages or self.chance(0.7) else self.pick(stages)
        parts.append(base)
        if name:
            parts += [self.pick(("AS", "as", "As")), name]
        return " ".join(parts)

    def dockerfile(self) -> str:
        lines: list[str] = []
        if self.chance(0.3):
            lines.append(
                self.pick(
                    (
                        "# syntax=docker/dockerfile:1",
                        "# escape=`",
                        "# escape=\\",
                        "# escape=x",
                        "# check=skip=all",
                        "# check=error=true",
                        "# check=skip=JSONArgsRecommended;error=true",
                        "# check=bogus",
                    )
                )
            )
        for _ in range(self.rng.randrange(3)):
            lines.append(self.i_arg([]))
        stages: list[str] = []
        for i in range(self.rng.randrange(1, 5)):
            name = self.pick(_NAMES) if self.chance(0.6) else None
            lines.append(self.from_line(stages, name))
            stages.append(name or str(i))
            for _ in range(self.rng.randrange(8)):
                line = self.instruction(stages)
                if self.chance(0.1):  # continuation lines, with comments inside
                    line = line.replace(" ", " \\\n  # c\n ", 1)
                lines.append(line)
        return "\n".join(lines) + ("\n" if self.chance(0.9) else "")


_KINDS = (
    "run",
    "run",
    "copy",
    "copy",
    "env",
    "arg",
    "label",
    "expose",
    "user",
    "workdir",
    "volume",
    "cmd",
    "healthcheck",
    "stopsignal",
    "shell",
    "onbuild",
    "maintainer",
    "other",
)

_NUMBER_RE = re.compile(r"\d+")


def mutate(text: str, rng: random.Random) -> str:
    """One hostile mutation of a generated Dockerfile."""
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    kind = rng.randrange(14)
    if kind == 0:  # a huge number where a number was
        return _NUMBER_RE.sub(lambda m: "9" * rng.choice((20, 400, 5000)), text, count=3)
    if kind == 1:  # unicode digits where ASCII ones were
        digits = rng.choice(("⁰¹²³⁴⁵⁶⁷⁸⁹", "٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９"))
        table = str.maketrans("0123456789", digits)
        return text.translate(table)
    if kind == 2:  # deeply nested substitutions
        depth = rng.choice((50, 150, 400, 2000))
        lines.insert(at, "ENV D=" + "${A:-" * depth + "x" + "}" * depth)
    elif kind == 3:  # a very long line
        lines[at] = lines[at] + " " + "x" * rng.choice((10_000, 200_000))
    elif kind == 4:  # a NUL or other control character
        s = lines[at]
        pos = rng.randrange(len(s) + 1)
        lines[at] = s[:pos] + rng.choice(("\0", "\x1b", "\r", "\x0b", "\ufeff", "\ufffd")) + s[pos:]
    elif kind == 5:  # an unterminated quote
        s = lines[at]
        pos = rng.randrange(len(s) + 1)
        lines[at] = s[:pos] + rng.choice(("'", '"', "[", "${", "`")) + s[pos:]
    elif kind == 6:  # many stages, chained or not
        n = rng.choice((100, 1000, 3000))
        chained = rng.random() < 0.5
        lines += ["FROM scratch AS m0"] + [
            f"FROM {'m' + str(i) if chained else 'scratch'} AS m{i + 1}" for i in range(n)
        ]
    elif kind == 7:  # many ONBUILDs or instructions
        n = rng.choice((500, 2000))
        lines += [rng.choice(("ONBUILD RUN x", "ENV A=$A$A", "ARG A", "LABEL a=b"))] * n
    elif kind == 8:  # delete a character
        s = lines[at]
        if s:
            pos = rng.randrange(len(s))
            lines[at] = s[:pos] + s[pos + 1 :]
    elif kind == 9:  # duplicate or drop a line
        if rng.random() < 0.5:
            lines.insert(at, lines[at])
        else:
            del lines[at]
    elif kind == 10:  # a deep run of continuations or heredocs
        lines.insert(at, "RUN " + " \\\n" * rng.choice((100, 5000)) + "true")
    elif kind == 11:  # many heredocs on one line
        n = rng.choice((50, 500))
        words = " ".join(f"<<E{i}" for i in range(n))
        lines.insert(at, f"RUN {words}\n" + "\n".join(f"E{i}" for i in range(n)))
    elif kind == 12:  # deeply nested brackets / JSON
        depth = rng.choice((100, 10_000))
        lines.insert(at, rng.choice(("CMD ", "RUN ", "SHELL ")) + "[" * depth + "]" * depth)
    else:  # random bytes-as-text
        s = lines[at]
        pos = rng.randrange(len(s) + 1)
        junk = "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 8)))
        lines[at] = s[:pos] + junk + s[pos:]
    return "\n".join(lines)


def case(seed: int, index: int) -> str:
    """Case `index` of run `seed`: a generated Dockerfile, mutated 0-3 times."""
    rng = random.Random(f"{seed}:{index}")
    text = Grammar(rng).dockerfile()
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        text = mutate(text, rng)
    return text
