"""Files and command line in, a resolved `Plan` out: buildx's ParseFiles and ReadTargets.

Compose files merge first, then HCL/JSON files evaluate onto them; requested names expand to
groups and targets; inherits, `--set` overrides and `target:` links resolve; every failure is
a `BakeError` pointing into the file that caused it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bale.errors import BakeError, SourceRange
from bale.frontends.bake import compose, hclparse, jsonparse, overrides
from bale.frontends.bake.config import Config, VariableInfo
from bale.frontends.bake.evaluate import EvalError
from bale.frontends.bake.plan import Plan, PlanGroup, clean_context, freeze
from bale.frontends.bake.syntax import Body, Range
from bale.frontends.bake.target import Group, Target

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
DEFAULT_FILES = (
    *COMPOSE_NAMES,
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
)
MAX_INHERIT_DEPTH = 256


@dataclass(frozen=True)
class BakeFile:
    name: str
    text: str


@dataclass
class Definition:
    """All files parsed and merged, before any target is resolved."""

    targets: list[Target] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    variables: list[VariableInfo] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)


def env_lookup_allowed() -> bool:
    v = os.environ.get("BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP")
    return not (v is not None and v.strip().lower() in ("1", "t", "true"))


def read_local_files(
    names: list[str], read_stdin: Callable[[], str] | None = None, cwd: Path | None = None
) -> list[BakeFile]:
    base = cwd or Path.cwd()
    default = not names
    out: list[BakeFile] = []
    for name in names or list(DEFAULT_FILES):
        if name == "-":
            if read_stdin is None:
                raise BakeError("reading the bake definition from stdin is not available here")
            out.append(BakeFile("-", read_stdin()))
            continue
        path = base / name
        try:
            out.append(BakeFile(name, path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            if default:
                continue
            raise BakeError(f"open {name}: no such file or directory") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BakeError(f"failed to read {name}: {exc}") from None
    return out


def files_from_env(env: Mapping[str, str]) -> list[str]:
    value = env.get("BUILDX_BAKE_FILE")
    if value is None:
        return []
    sep = env.get("BUILDX_BAKE_PATH_SEPARATOR") or os.pathsep
    return [p.strip() for p in value.split(sep) if p.strip()]


def _is_compose(f: BakeFile) -> bool:
    low = f.name.lower()
    if low.endswith((".yml", ".yaml")):
        return True
    if low.endswith((".json", ".hcl")):
        return False
    try:
        doc = compose.load_yaml(f.text, f.name)
    except compose.ComposeError:
        return False
    return isinstance(doc, dict) and ("services" in doc or "secrets" in doc)


def located(files: Mapping[str, str], message: str, rng: Range | None, hint: str = "") -> BakeError:
    if rng is None or rng.filename not in files:
        return BakeError(message, hint=hint)
    if not message.startswith(rng.filename + ":"):
        message = f"{rng.text()}: {message}"
    lines = tuple(files[rng.filename].splitlines())
    end = max(rng.line, min(rng.end_line, len(lines)))
    return BakeError(
        message, source=SourceRange(rng.filename, rng.line, end), lines=lines, hint=hint
    )


def _parse_body(f: BakeFile, files: Mapping[str, str]) -> Body:
    try:
        if f.name.endswith(".json"):
            return jsonparse.parse_file(f.text, f.name)
        if f.name.endswith(".hcl"):
            return hclparse.parse_file(f.text, f.name)
        try:
            return hclparse.parse_file(f.text, f.name)
        except hclparse.HCLSyntaxError:
            return jsonparse.parse_file(f.text, f.name)
    except hclparse.HCLSyntaxError as exc:
        rng = Range(exc.filename, exc.line, exc.col, exc.line, exc.col + 1)
        raise located(files, f"{exc.filename}:{exc.line},{exc.col}: {exc.message}", rng) from None


def parse_files(
    files: list[BakeFile],
    *,
    builtins: Mapping[str, str],
    variables: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Definition:
    texts = {f.name: f.text for f in files}
    vars_ = dict(variables or {})
    env_ok = env_lookup_allowed()
    d = Definition(files=texts)
    compose_files = [f for f in files if _is_compose(f)]
    others = [f for f in files if f not in compose_files]
    if compose_files:
        try:
            env = compose.compose_env(vars_, env_ok, cwd or Path.cwd())
            targets, groups = compose.parse(
                [(f.name, f.text) for f in compose_files], env, cwd or Path.cwd()
            )
        except (compose.ComposeError, OSError) as exc:
            raise BakeError(f"failed to parse compose file: {exc}") from None
        for g in groups:
            _merge_group(d, g)
        for t in targets:
            _merge_target(d, t)
    if others:
        bodies = [_parse_body(f, texts) for f in others]

        def lookup(name: str) -> str | None:
            if name in vars_:
                return vars_[name]
            return os.environ.get(name) if env_ok else None

        try:
            parsed = Config(bodies, lookup, dict(builtins)).parse()
        except EvalError as exc:
            raise located(texts, exc.text(), exc.rng) from None
        for kind, item in parsed.items:
            if kind == "target":
                assert isinstance(item, Target)
                _merge_target(d, item)
            else:
                assert isinstance(item, Group)
                existing = d.group(item.name)
                if existing is not None:
                    d.groups[d.groups.index(existing)] = item
                else:
                    d.groups.append(item)
        for label, names in parsed.renamed.items():
            names = list(dict.fromkeys(names))
            if len(names) == 1 and names[0] == label:
                continue
            d.groups.append(Group(label, targets=names))
        d.variables = parsed.variables
    for g in d.groups:
        if g.targets is not None:
            g.targets = list(dict.fromkeys(g.targets))
    return d


def _merge_target(d: Definition, t: Target) -> None:
    existing = d.target(t.name)
    if existing is not None:
        existing.merge(t)
    else:
        d.targets.append(t)


def _merge_group(d: Definition, g: Group) -> None:
    existing = d.group(g.name)
    if existing is None:
        d.groups.append(g)
        return
    existing.targets = list(dict.fromkeys((existing.targets or []) + (g.targets or [])))


# Resolution -------------------------------------------------------------------------


def match_names(d: Definition, pattern: str) -> list[str]:
    if not any(c in pattern for c in "*?[]"):
        return [pattern]
    names = [g.name for g in d.groups if overrides.path_match(pattern, g.name)]
    names += [t.name for t in d.targets if overrides.path_match(pattern, t.name)]
    if not names:
        raise BakeError(f'could not find any target matching "{pattern}"')
    return names


def resolve_group(d: Definition, name: str) -> tuple[list[str], list[str]]:
    visited: dict[str, tuple[list[str], list[str]]] = {}

    def walk(n: str) -> tuple[list[str], list[str]]:
        if n in visited:
            return visited[n]
        g = d.group(n)
        if g is None:
            return [n], []
        visited[n] = ([], [])
        targets: list[str] = []
        groups = [n]
        for t in g.targets or []:
            tt, tg = walk(t)
            targets.extend(tt if tt else [t])
            groups.extend(tg)
        visited[n] = (targets, groups)
        return targets, groups

    t, g = walk(name)
    return list(dict.fromkeys(t)), list(dict.fromkeys(g))


class Resolver:
    def __init__(self, d: Definition, sets: dict[str, dict[str, overrides.Override]]) -> None:
        self.d, self.sets = d, sets

    def resolve(self, name: str) -> Target:
        t = self._target(name, {}, [])
        t.inherits = None
        if t.context is None:
            t.context = "."
        if not t.dockerfile:
            t.dockerfile = "Dockerfile"
        return t

    def _target(self, name: str, done: dict[str, Target], stack: list[str]) -> Target:
        if name in done:
            return done[name]
        src = self.d.target(name)
        if src is None:
            raise BakeError(f"failed to find target {name}")
        if name in stack or len(stack) > MAX_INHERIT_DEPTH:
            chain = " -> ".join([*stack[stack.index(name) :], name]) if name in stack else name
            raise located(
                self.d.files, f"inherits cycle not allowed: {chain}", src.ranges.get("inherits")
            )
        base = Target(name)
        for parent in src.inherits or []:
            base.merge(self._target(parent, done, [*stack, name]))
        merged = Target(name)
        merged.merge(base)
        merged.merge(src)
        overrides.apply(merged, self.sets.get(name, {}))
        merged.normalize()
        done[name] = merged
        return merged


def read_targets(
    d: Definition,
    requested: list[str],
    sets: list[str],
    *,
    env: Mapping[str, str] | None = None,
) -> Plan:
    env = os.environ if env is None else env
    names: list[str] = []
    for req in requested or ["default"]:
        names.extend(match_names(d, req.replace(".", "_")))
    names = list(dict.fromkeys(names))
    parsed_sets = overrides.parse(sets, [t.name for t in d.targets], env_lookup_allowed())
    resolver = Resolver(d, parsed_sets)
    targets: dict[str, Target] = {}
    groups: dict[str, Group] = {}
    for name in names:
        tnames, gnames = resolve_group(d, name)
        for tn in tnames:
            targets[tn] = resolver.resolve(tn)
        for gn in gnames:
            g = d.group(gn)
            if g is not None:
                groups[gn] = Group(
                    g.name, g.description, list(g.targets) if g.targets is not None else None
                )
    for name in names:
        if name == "default" and "default" in groups:
            continue
        groups.setdefault("default", Group("default", targets=[]))
        default = groups["default"]
        default.targets = (default.targets or []) + [name]
    if "default" in groups and groups["default"].targets is not None:
        groups["default"].targets = sorted(dict.fromkeys(groups["default"].targets))
    for name in sorted(targets):
        _load_links(d, resolver, name, targets[name], targets, [])
    epoch = env.get("SOURCE_DATE_EPOCH", "")
    for t in targets.values():
        if t.args and "SOURCE_DATE_EPOCH" in t.args:
            continue
        if epoch:
            t.args = {**(t.args or {}), "SOURCE_DATE_EPOCH": epoch}
        t.context = clean_context(t.context or ".")
    return Plan(
        {
            n: PlanGroup(g.name, g.description, tuple(g.targets) if g.targets is not None else None)
            for n, g in groups.items()
        },
        {n: freeze(t) for n, t in targets.items()},
    )


def _load_links(
    d: Definition,
    resolver: Resolver,
    name: str,
    t: Target,
    m: dict[str, Target],
    visited: list[str],
) -> None:
    visited = [*visited, name]
    for value in (t.contexts or {}).values():
        if not value.startswith("target:"):
            continue
        other = value[len("target:") :]
        where = t.ranges.get("contexts")
        if other == name:
            raise located(d.files, f"target {other} cannot link to itself", where)
        if other in visited:
            raise located(d.files, f"infinite loop from {name} to {other}", where)
        t2 = m.get(other)
        if t2 is None:
            t2 = resolver.resolve(other)
            from bale.frontends.bake.buildflags import Export

            t2.output = [Export("cacheonly")]
            t2.linked = True
            m[other] = t2
        _load_links(d, resolver, other, t2, m, visited)
        for ent in t2.entitlements or []:
            if ent not in (t.entitlements or []):
                t.entitlements = [*(t.entitlements or []), ent]
        if (
            len(t.platforms or []) > 1
            and len(t2.platforms or []) > 1
            and not set(t.platforms or []) <= set(t2.platforms or [])
        ):
            raise located(
                d.files,
                f"target {other} can't be used by {name} because its platforms {_golist(t.platforms)} are not a subset of {_golist(t2.platforms)}",
                where,
            )


def _golist(items: list[str] | None) -> str:
    return "[" + " ".join(items or []) + "]"
