"""Compose files as bake targets: `services.*.build` plus the `x-bake` extension.

What buildx's compose loader uses of compose-go: `${VAR}` interpolation from the environment
and `.env`, merging of several files, `include`, and the build section's schema.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bale.frontends.bake import buildflags as bf
from bale.frontends.bake.target import Group, Target

BUILD_KEYS = {
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "additional_contexts",
    "network",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
    "entitlements",
    "sbom",
    "provenance",
}


class ComposeError(Exception):
    pass


_VAR = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_EXPR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.S)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        if m.group(3):
            return env.get(m.group(3), "")
        body = m.group(2)
        em = _EXPR.match(body)
        if em is None:
            raise ComposeError(f"invalid interpolation format for {text!r}")
        name, op, arg = em.group(1), em.group(2), em.group(3) or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return interpolate(arg, env) if unset else value or ""
        if op in ("?", ":?"):
            if unset:
                raise ComposeError(f"required variable {name} is missing a value: {arg}")
            return value or ""
        if op in ("+", ":+"):
            return "" if unset else interpolate(arg, env)
        return value or ""

    return _VAR.sub(sub, text)


def _interpolate_tree(node: Any, env: Mapping[str, str], depth: int = 0) -> Any:
    if depth > 64:
        raise ComposeError("compose file nested too deeply")
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(n, env, depth + 1) for n in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, depth + 1) for k, v in node.items()}
    return node


def parse_dotenv(text: str, env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            if key in env:
                out[key] = env[key]
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
                value = interpolate(value, {**env, **out})
        else:
            value = value.split(" #", 1)[0].rstrip()
            value = interpolate(value, {**env, **out})
        out[key] = value
    return out


def compose_env(overrides: Mapping[str, str], env_allowed: bool, cwd: Path) -> dict[str, str]:
    env = dict(os.environ) if env_allowed else {}
    dotenv = cwd / ".env"
    if dotenv.is_file():
        for k, v in parse_dotenv(dotenv.read_text(), env).items():
            env.setdefault(k, v)
    env.update(overrides)
    return env


def load_yaml(text: str, name: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}: " if mark is not None else f"{name}: "
        raise ComposeError(f"{where}{getattr(exc, 'problem', None) or exc}") from None


def _deep_merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _deep_merge(a[k], v) if k in a else v
        return out
    return b


def load_project(files: list[tuple[str, str]], env: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    env = dict(env)
    env.setdefault("COMPOSE_PROJECT_NAME", "bake")
    model: dict[str, Any] = {}
    for name, text in files:
        doc = load_yaml(text, name)
        if doc is None:
            raise ComposeError("empty compose file")
        if not isinstance(doc, dict):
            raise ComposeError(f"{name}: top-level object must be a mapping")
        doc = _interpolate_tree(doc, env)
        for inc in doc.pop("include", None) or []:
            path = (
                inc
                if isinstance(inc, str)
                else (inc.get("path") if isinstance(inc, dict) else None)
            )
            paths = path if isinstance(path, list) else [path]
            for p in paths:
                if not isinstance(p, str):
                    raise ComposeError("include entries must be paths")
                target = cwd / p
                model = _deep_merge(
                    model, load_project([(str(target), target.read_text())], env, cwd)
                )
        model = _deep_merge(model, {k: doc[k] for k in ("services", "secrets") if k in doc})
    return model


def parse(
    files: list[tuple[str, str]], env: Mapping[str, str], cwd: Path
) -> tuple[list[Target], list[Group]]:
    model = load_project(files, env, cwd)
    services = model.get("services") or {}
    secrets_def = model.get("secrets") or {}
    if not isinstance(services, dict) or not isinstance(secrets_def, dict):
        raise ComposeError("services and secrets must be mappings")
    for sname, sdef in secrets_def.items():
        if not isinstance(sdef, dict) or not (
            sdef.get("file") or sdef.get("environment") or sdef.get("external")
        ):
            raise ComposeError(
                f'secret "{sname}" must declare either `file` or `environment`: invalid compose project'
            )
    targets: list[Target] = []
    group = Group("default", targets=[])
    for name in sorted(services):
        svc = services[name] or {}
        if not isinstance(svc, dict):
            raise ComposeError(f"services.{name} must be a mapping")
        build = svc.get("build")
        if build is None:
            if not svc.get("image"):
                raise ComposeError(
                    f'service "{name}" has neither an image nor a build context specified: invalid compose project'
                )
            continue
        t = _target(name, svc, build, secrets_def, env)
        assert group.targets is not None
        group.targets.append(t.name)
        targets.append(t)
    return targets, ([group] if services else [])


def _clean(p: str) -> str:
    if "://" in p or p.startswith(("target:", "service:", "docker-image:", "oci-layout:")):
        return p
    return posixpath.normpath(p)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else None
        return out
    raise ComposeError(f"{what} must be a mapping or a list")


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _target(
    name: str, svc: dict[str, Any], build: Any, secrets_def: dict[str, Any], env: Mapping[str, str]
) -> Target:
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        raise ComposeError(f"services.{name}.build must be a string or a mapping")
    unknown = sorted(k for k in build if k not in BUILD_KEYS and not k.startswith("x-"))
    if unknown:
        raise ComposeError(
            f"validating compose file: services.{name}.build additional properties '{unknown[0]}' not allowed"
        )
    tname = name.replace(".", "_")
    from bale.frontends.bake.config import _NAME_RE

    if not _NAME_RE.match(tname):
        raise ComposeError(f'invalid service name "{tname}": only "[a-zA-Z0-9_-]+" are allowed')
    t = Target(tname)
    if build.get("context"):
        t.context = _clean(str(build["context"]))
    if build.get("dockerfile"):
        t.dockerfile = str(build["dockerfile"])
    if build.get("dockerfile_inline"):
        t.dockerfile_inline = str(build["dockerfile_inline"])
    if build.get("additional_contexts"):
        t.contexts = _named_contexts(
            {
                k: _clean(_scalar(v))
                for k, v in _mapping(build["additional_contexts"], "additional_contexts").items()
            }
        )
    shm = build.get("shm_size")
    if shm:
        t.shm_size = _mem_string(shm)
    if build.get("network"):
        t.network = str(build["network"])
    ulimits = build.get("ulimits")
    if ulimits:
        t.ulimits = [_ulimit(k, v) for k, v in ulimits.items()]
    hosts = build.get("extra_hosts")
    if hosts:
        t.extra_hosts = _extra_hosts(hosts)
    ssh = [bf.SSH.parse(s) for s in _ssh_list(build.get("ssh"))]
    if ssh:
        t.ssh = sorted(ssh, key=lambda s: s.sort_key())
    secrets = []
    for s in build.get("secrets") or []:
        source = s if isinstance(s, str) else s.get("source")
        sdef = secrets_def.get(source)
        if sdef is None:
            raise ComposeError(
                f'service "{name}" refers to undefined build secret {source}: invalid compose project'
            )
        if sdef.get("external"):
            raise ComposeError(f"unsupported external secret {source}")
        secrets.append(
            bf.Secret(source, str(sdef.get("file") or ""), str(sdef.get("environment") or ""))
        )
    if secrets:
        t.secret = secrets
    labels = _mapping(build.get("labels"), "labels")
    t.labels = {k: _scalar(v) if v is not None else "" for k, v in labels.items()}
    environment = {k: v for k, v in _mapping(svc.get("environment"), "environment").items()}
    for env_file in svc.get("env_file") or []:
        path = env_file if isinstance(env_file, str) else env_file.get("path")
        for k, v in parse_dotenv(Path(path).read_text(), env).items():
            environment.setdefault(k, v)
    args: dict[str, str | None] = {}
    for k, v in _mapping(build.get("args"), "args").items():
        if v is None:
            if environment.get(k) is not None:
                args[k] = _scalar(environment[k])
            elif k in env:
                args[k] = env[k]
            continue
        args[k] = _scalar(v)
    t.args = args or None
    t.cache_from = bf.parse_cache_entries([str(x) for x in build.get("cache_from") or []]) or None
    t.cache_to = bf.parse_cache_entries([str(x) for x in build.get("cache_to") or []]) or None
    attests = []
    if build.get("sbom") not in (None, ""):
        attests.append(bf.Attest.parse(bf.canonicalize_attest("sbom", _scalar(build["sbom"]))))
    if build.get("provenance") not in (None, ""):
        attests.append(
            bf.Attest.parse(bf.canonicalize_attest("provenance", _scalar(build["provenance"])))
        )
    t.attest = attests or None
    if build.get("no_cache"):
        t.no_cache = True
    if build.get("pull"):
        t.pull = True
    if build.get("tags"):
        t.tags = [str(x) for x in build["tags"]]
    if build.get("platforms"):
        t.platforms = [str(x) for x in build["platforms"]]
    _x_bake(t, build.get("x-bake"))
    if build.get("target"):
        t.target = str(build["target"])
    if not t.tags and svc.get("image"):
        t.tags = [str(svc["image"])]
    return t


def _ssh_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={v}" if v else str(k) for k, v in value.items()]
    return [str(v) for v in value]


def _named_contexts(m: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in m.items():
        if v.startswith(("service:", "target:")):
            v = "target:" + v.split(":", 1)[1].replace(".", "_")
        out[k] = v
    return out


def _mem_string(value: Any) -> str:
    m = re.match(r"^(\d+(?:\.\d+)?)\s*([kmgtb]?)b?$", str(value).strip().lower())
    if m is None:
        raise ComposeError(f"invalid size: {value!r}")
    mult = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2)]
    size = float(m.group(1)) * mult
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.4g}{unit}"
    return f"{size:.4g}B"


def _ulimit(name: str, value: Any) -> str:
    if isinstance(value, dict):
        soft, hard = value.get("soft"), value.get("hard")
    else:
        soft = hard = value
    return f"{name}={int(str(soft))}:{int(str(hard))}"


def _extra_hosts(value: Any) -> dict[str, str | None]:
    pairs: dict[str, list[str]] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            pairs.setdefault(str(k), []).extend(v if isinstance(v, list) else [str(v)])
    else:
        for item in value:
            text = str(item)
            if "=" in text:
                host, _, ip = text.partition("=")
            else:
                host, _, ip = text.partition(":")
            pairs.setdefault(host, []).append(ip)
    return {k: ",".join(v) for k, v in pairs.items()}


def _string_array(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


def _x_bake(t: Target, ext: Any) -> None:
    if not ext:
        return
    if not isinstance(ext, dict):
        raise ComposeError("x-bake must be a mapping")
    tags = _string_array(ext.get("tags"))
    if tags:
        t.tags = list(dict.fromkeys((t.tags or []) + tags))
    for key, attr in (("cache-from", "cache_from"), ("cache-to", "cache_to")):
        items = _string_array(ext.get(key))
        if items:
            setattr(
                t,
                attr,
                bf.merge_list(getattr(t, attr), bf.parse_cache_entries(items), bf.normalize_caches),
            )
    secrets = _string_array(ext.get("secret"))
    if secrets:
        t.secret = bf.merge_list(
            t.secret, [bf.Secret.parse(s) for s in secrets], bf.normalize_secrets
        )
    ssh = _string_array(ext.get("ssh"))
    if ssh:
        merged = bf.merge_list(t.ssh, [bf.SSH.parse(s) for s in ssh], bf.normalize_ssh) or []
        t.ssh = sorted(merged, key=lambda s: s.sort_key())
    platforms = _string_array(ext.get("platforms"))
    if platforms:
        t.platforms = list(dict.fromkeys((t.platforms or []) + platforms))
    outputs = _string_array(ext.get("output"))
    if outputs:
        t.output = bf.merge_list(
            t.output, [bf.Export.parse(o) for o in outputs], bf.normalize_exports
        )
    if ext.get("pull") is not None:
        t.pull = bool(ext["pull"])
    if ext.get("no-cache") is not None:
        t.no_cache = bool(ext["no-cache"])
    ncf = _string_array(ext.get("no-cache-filter"))
    if ncf:
        t.no_cache_filter = list(dict.fromkeys((t.no_cache_filter or []) + ncf))
    contexts = ext.get("contexts")
    if contexts:
        extra = _named_contexts({str(k): str(v) for k, v in contexts.items()})
        t.contexts = {**extra, **(t.contexts or {})}
