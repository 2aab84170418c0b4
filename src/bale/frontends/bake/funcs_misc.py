"""format, regular expressions, hashes, UUIDs, time, CIDR and semver functions."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import re
import urllib.parse
import uuid
from decimal import Decimal
from typing import Any

from bale.frontends.bake import values as V
from bale.frontends.bake.funcs import ArgError, N, P, S, fn, integer

# Widths and precisions in format() verbs above this are refused (no runaway strings).
MAX_WIDTH = 4096

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def _format(spec: str, args: tuple[Any, ...]) -> str:
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(spec):
        out.append(spec[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if (width and int(width) > MAX_WIDTH) or (prec and int(prec) > MAX_WIDTH):
            raise ArgError("format width or precision too large")
        if argi >= len(args):
            raise ArgError(f"not enough arguments for %{verb} at {m.start()}")
        arg = args[argi]
        argi += 1
        text = _verb(verb, flags, prec, arg)
        if width:
            w = int(width)
            if "-" in flags:
                text = text.ljust(w)
            elif "0" in flags and verb in "dfeEgGbxXo":
                sign = text[0] if text[:1] in "+-" else ""
                text = sign + text[len(sign) :].rjust(w - len(sign), "0")
            else:
                text = text.rjust(w)
        out.append(text)
    out.append(spec[pos:])
    if argi < len(args):
        raise ArgError(f"too many arguments; only {argi} used by format string")
    return "".join(out)


def _verb(verb: str, flags: str, prec: str | None, arg: Any) -> str:
    if verb == "v":
        if "#" in flags:
            return V.json_encode(arg)
        if arg is None:
            return "null"
        if isinstance(arg, (list, dict)):
            return V.json_encode(arg)
        return V.to_string(arg)
    if verb == "s":
        if arg is None:
            return "null"
        return V.to_string(arg)
    if verb == "q":
        return json.dumps(V.to_string(arg), ensure_ascii=False)
    if verb == "t":
        return "true" if V.to_bool(arg) else "false"
    n = V.to_number(arg)
    sign = "+" if "+" in flags and n >= 0 else (" " if " " in flags and n >= 0 else "")
    if verb in "dbxXo":
        i = integer(n, 0)
        base = {"d": "d", "b": "b", "x": "x", "X": "X", "o": "o"}[verb]
        return sign + format(i, base)
    if verb in "feEgG":
        p = int(prec) if prec is not None else (6 if verb in "feE" else None)
        if verb in "gG" and p is None:
            return sign + V.format_number(n)
        return sign + format(n, f".{p}{verb}")
    raise ArgError(f"unsupported format verb %{verb}")


@fn("format", P("format", S), variadic=P("args", None, True))
def _format_fn(spec: str, *args: Any) -> str:
    return _format(spec, args)


@fn("formatlist", P("format", S), variadic=P("args", None, True))
def _formatlist(spec: str, *args: Any) -> list[str]:
    lengths = {len(a) for a in args if isinstance(a, list)}
    if len(lengths) > 1:
        raise ArgError("all list arguments must have the same length")
    if not lengths:
        return [_format(spec, args)]
    n = lengths.pop()
    return [
        _format(spec, tuple(a[i] if isinstance(a, list) else a for a in args)) for i in range(n)
    ]


# Regular expressions (RE2 syntax, close enough to Python's for what bake files use) ----


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern.replace("(?P<", "(?P<"))
    except re.error as exc:
        raise ArgError(f"invalid regexp pattern: {exc}", 0) from None


def _match_value(rx: re.Pattern[str], m: re.Match[str]) -> Any:
    if rx.groupindex:
        return V.obj({name: m.group(name) or "" for name in rx.groupindex})
    if rx.groups:
        return [g or "" for g in m.groups()]
    return m.group(0)


@fn("regex", P("pattern", S), P("string", S))
def _regex(pattern: str, s: str) -> Any:
    rx = _compile(pattern)
    m = rx.search(s)
    if m is None:
        raise ArgError("pattern did not match any part of the given string")
    return _match_value(rx, m)


@fn("regexall", P("pattern", S), P("string", S))
def _regexall(pattern: str, s: str) -> list[Any]:
    rx = _compile(pattern)
    return [_match_value(rx, m) for m in rx.finditer(s)]


_GO_REF = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")


@fn("regex_replace", P("str", S), P("substr", S), P("replace", S))
def _regex_replace(s: str, pattern: str, repl: str) -> str:
    rx = _compile(pattern)

    def expand(m: re.Match[str]) -> str:
        def ref(r: re.Match[str]) -> str:
            if r.group(1) == "$":
                return "$"
            name = r.group(2) or r.group(3)
            try:
                return m.group(int(name) if name.isdigit() else name) or ""
            except (IndexError, error_type):
                return ""

        return _GO_REF.sub(ref, repl)

    return rx.sub(expand, s)


error_type = re.error


# Encodings and hashes -------------------------------------------------------------


@fn("base64encode", P("str", S))
def _b64enc(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@fn("base64decode", P("str", S))
def _b64dec(s: str) -> str:
    try:
        raw = base64.b64decode(s, validate=True)
        return raw.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise ArgError("failed to decode base64 data", 0) from None


@fn("urlencode", P("str", S))
def _urlencode(s: str) -> str:
    return urllib.parse.quote_plus(s, safe="-_.~")


def _hash(name: str) -> None:
    @fn(name, P("str", S))
    def digest(s: str) -> str:
        return hashlib.new(name, s.encode()).hexdigest()


for _name in ("md5", "sha1", "sha256", "sha512"):
    _hash(_name)


def _unavailable(name: str, *params: str) -> None:
    @fn(name, *(P(p) for p in params))
    def impl(*_args: Any) -> Any:
        raise ArgError(f"{name}() is not available in bale")


_unavailable("bcrypt", "str")
_unavailable("rsadecrypt", "ciphertext", "privatekey")
_unavailable("byteslen", "buf")
_unavailable("bytesslice", "buf", "offset", "length")


@fn("uuidv4")
def _uuidv4() -> str:
    return str(uuid.uuid4())


_UUID_NS = {
    "dns": uuid.NAMESPACE_DNS,
    "url": uuid.NAMESPACE_URL,
    "oid": uuid.NAMESPACE_OID,
    "x500": uuid.NAMESPACE_X500,
}


@fn("uuidv5", P("namespace", S), P("name", S))
def _uuidv5(ns: str, name: str) -> str:
    space = _UUID_NS.get(ns)
    if space is None:
        try:
            space = uuid.UUID(ns)
        except ValueError:
            raise ArgError(f"uuidv5() doesn't support namespace {ns}", 0) from None
    return str(uuid.uuid5(space, name))


# Time -----------------------------------------------------------------------------


def _parse_rfc3339(s: str, index: int) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(s.replace("z", "Z"))
    except ValueError:
        raise ArgError(f'not a valid RFC3339 timestamp: cannot use "{s}" as year', index) from None
    if t.tzinfo is None or "T" not in s.upper():
        raise ArgError(f'not a valid RFC3339 timestamp: "{s}"', index)
    return t


def _rfc3339(t: dt.datetime) -> str:
    text = t.isoformat()
    if t.microsecond:
        text = t.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


_DATE_TOKENS = re.compile(
    r"'(?:[^']|'')*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|AA|aa|mm|m|ss|s|ZZZZZ|ZZZZ|ZZZ|Z|[A-Za-z]+|[^A-Za-z']+"
)


def _formatdate(spec: str, t: dt.datetime) -> str:
    out: list[str] = []
    offset = t.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    oh, om = divmod(abs(minutes), 60)
    hour12 = t.hour % 12 or 12
    table = {
        "YYYY": f"{t.year:04d}",
        "YY": f"{t.year % 100:02d}",
        "MMMM": t.strftime("%B"),
        "MMM": t.strftime("%b"),
        "MM": f"{t.month:02d}",
        "M": str(t.month),
        "DD": f"{t.day:02d}",
        "D": str(t.day),
        "EEEE": t.strftime("%A"),
        "EEE": t.strftime("%a"),
        "hh": f"{t.hour:02d}",
        "h": str(t.hour),
        "HH": f"{hour12:02d}",
        "H": str(hour12),
        "AA": "AM" if t.hour < 12 else "PM",
        "aa": "am" if t.hour < 12 else "pm",
        "mm": f"{t.minute:02d}",
        "m": str(t.minute),
        "ss": f"{t.second:02d}",
        "s": str(t.second),
        "ZZZZZ": f"{sign}{oh:02d}:{om:02d}",
        "ZZZZ": f"{sign}{oh:02d}{om:02d}",
        "ZZZ": "UTC" if minutes == 0 else f"{sign}{oh:02d}{om:02d}",
        "Z": "Z" if minutes == 0 else f"{sign}{oh:02d}:{om:02d}",
    }
    for tok in _DATE_TOKENS.findall(spec):
        if tok.startswith("'"):
            out.append(tok[1:-1].replace("''", "'"))
        elif tok in table:
            out.append(table[tok])
        elif tok[0].isalpha():
            raise ArgError(f"invalid date format verb {tok!r}", 0)
        else:
            out.append(tok)
    return "".join(out)


@fn("timestamp")
def _timestamp() -> str:
    return _rfc3339(dt.datetime.now(dt.UTC).replace(microsecond=0))


@fn("formatdate", P("format", S), P("time", S))
def _formatdate_fn(spec: str, ts: str) -> str:
    return _formatdate(spec, _parse_rfc3339(ts, 1))


def _unix(n: Decimal, index: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(integer(n, index, "unix timestamp"), dt.UTC)


@fn("formattimestamp", P("format", S), P("time"))
def _formattimestamp(spec: str, ts: Any) -> str:
    if isinstance(ts, str):
        t = _parse_rfc3339(ts, 1)
    elif isinstance(ts, Decimal):
        t = _unix(ts, 1)
    else:
        raise ArgError("must be a string timestamp or a unix timestamp number", 1)
    if spec == "X":
        return str(int(t.timestamp()))
    return _formatdate(spec, t)


_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


@fn("timeadd", P("timestamp", S), P("duration", S))
def _timeadd(ts: str, duration: str) -> str:
    t = _parse_rfc3339(ts, 0)
    text = duration
    neg = text.startswith("-")
    text = text.lstrip("+-")
    if text == "0":
        return _rfc3339(t)
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ArgError(f'time: invalid duration "{duration}"', 1)
    return _rfc3339(t + dt.timedelta(seconds=-seconds if neg else seconds))


@fn("unixtimestampparse", P("unix_timestamp", N))
def _unixtimestampparse(n: Decimal) -> dict[str, Any]:
    t = _unix(n, 0)
    iso_year, iso_week, _ = t.isocalendar()
    return V.obj(
        {
            "year": Decimal(t.year),
            "year_day": Decimal(t.timetuple().tm_yday),
            "day": Decimal(t.day),
            "month": Decimal(t.month),
            "month_name": t.strftime("%B"),
            "weekday": Decimal((t.weekday() + 1) % 7),
            "weekday_name": t.strftime("%A"),
            "hour": Decimal(t.hour),
            "minute": Decimal(t.minute),
            "second": Decimal(t.second),
            "rfc3339": _rfc3339(t),
            "iso_year": Decimal(iso_year),
            "iso_week": Decimal(iso_week),
        }
    )


# CIDR -----------------------------------------------------------------------------


def _network(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError as exc:
        raise ArgError(f"invalid CIDR expression: {exc}", 0) from None


@fn("cidrhost", P("prefix", S), P("hostnum", N))
def _cidrhost(prefix: str, hostnum: Decimal) -> str:
    net = _network(prefix)
    n = integer(hostnum, 1)
    if n < 0:
        n += net.num_addresses
    if not 0 <= n < net.num_addresses:
        raise ArgError(
            f"prefix of {net.prefixlen} does not accommodate a host numbered {hostnum}", 1
        )
    return str(net.network_address + n)


@fn("cidrnetmask", P("prefix", S))
def _cidrnetmask(prefix: str) -> str:
    net = _network(prefix)
    if net.version != 4:
        raise ArgError("only IPv4 networks have a netmask", 0)
    return str(net.netmask)


def _subnet(net: ipaddress.IPv4Network | ipaddress.IPv6Network, bits: int, num: int) -> Any:
    new = net.prefixlen + bits
    if bits < 0 or new > net.max_prefixlen:
        raise ArgError(
            f"insufficient address space to extend prefix of {net.prefixlen} by {bits}", 1
        )
    if not 0 <= num < 2**bits:
        raise ArgError(
            f"prefix extension of {bits} does not accommodate a subnet numbered {num}", 2
        )
    size = 2 ** (net.max_prefixlen - new)
    return ipaddress.ip_network((int(net.network_address) + num * size, new))


@fn("cidrsubnet", P("prefix", S), P("newbits", N), P("netnum", N))
def _cidrsubnet(prefix: str, newbits: Decimal, netnum: Decimal) -> str:
    return str(_subnet(_network(prefix), integer(newbits, 1), integer(netnum, 2)))


@fn("cidrsubnets", P("prefix", S), variadic=P("newbits", N))
def _cidrsubnets(prefix: str, *newbits: Decimal) -> list[str]:
    net = _network(prefix)
    out: list[str] = []
    cursor = int(net.network_address)
    for nb in newbits:
        bits = integer(nb, 1)
        new = net.prefixlen + bits
        if new > net.max_prefixlen:
            raise ArgError(f"would extend prefix to {new} bits, which is too long", 1)
        size = 2 ** (net.max_prefixlen - new)
        cursor = (cursor + size - 1) // size * size
        sub = ipaddress.ip_network((cursor, new))
        if int(sub.broadcast_address) > int(net.broadcast_address):
            raise ArgError(
                f"not enough remaining address space for a subnet with a prefix of {new} bits", 1
            )
        out.append(str(sub))
        cursor += size
    return out


# Semver (Masterminds constraints, as buildx uses) ----------------------------------

_SEMVER = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def _version(text: str, index: int) -> tuple[int, int, int, str]:
    m = _SEMVER.match(text.strip())
    if m is None:
        raise ArgError("Invalid Semantic Version", index)
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), m.group(4) or ""


def _cmp(a: tuple[int, int, int, str], b: tuple[int, int, int, str]) -> int:
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    if a[3] == b[3]:
        return 0
    if not a[3]:
        return 1
    if not b[3]:
        return -1
    return -1 if a[3] < b[3] else 1


_CONSTRAINT = re.compile(
    r"^\s*(=|!=|>=|<=|>|<|~>|~|\^)?\s*v?([0-9xX*]+(?:\.[0-9xX*]+)?(?:\.[0-9xX*]+)?(?:-[0-9A-Za-z.-]+)?)\s*$"
)


def _check(version: tuple[int, int, int, str], constraint: str) -> bool:
    m = _CONSTRAINT.match(constraint)
    if m is None:
        raise ArgError(f"improper constraint: {constraint}", 1)
    op, text = m.group(1) or "", m.group(2)
    fields = text.split("-", 1)[0].split(".")
    wild = next((i for i, f in enumerate(fields) if f in ("x", "X", "*")), len(fields))
    nums = [int(f) for f in fields[:wild]] + [0] * (3 - min(wild, 3))
    pre = text.split("-", 1)[1] if "-" in text else ""
    base = (nums[0], nums[1], nums[2], pre)
    if version[3] and not pre:
        return False  # prereleases only satisfy constraints that name one
    c = _cmp(version, base)
    given = min(wild, len(fields))
    if op in ("", "=") and given < 3:
        op = "~" if given >= 1 else ">="
        if given == 0:
            return True
    if op in ("", "="):
        return c == 0
    if op == "!=":
        return c != 0
    if op == ">":
        return c > 0
    if op == ">=":
        return c >= 0
    if op == "<":
        return c < 0
    if op == "<=":
        return c <= 0
    if op in ("~", "~>"):
        upper = (base[0] + 1, 0, 0, "") if given <= 1 else (base[0], base[1] + 1, 0, "")
        return c >= 0 and _cmp(version, upper) < 0
    upper = (
        (base[0] + 1, 0, 0, "")
        if base[0] > 0 or given == 1
        else ((0, base[1] + 1, 0, "") if base[1] > 0 or given == 2 else (0, 0, base[2] + 1, ""))
    )
    return c >= 0 and _cmp(version, upper) < 0


@fn("semvercmp", P("version", S), P("contraint", S))
def _semvercmp(version: str, constraint: str) -> bool:
    v = _version(version, 0)
    for alternative in constraint.split("||"):
        parts = [p for p in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", alternative.strip()) if p]
        if parts and all(_check(v, p) for p in parts):
            return True
    return False
