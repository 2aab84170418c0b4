"""The history lines BuildKit writes for Dockerfile steps (what `docker history` shows)."""

from __future__ import annotations

import json
import posixpath

from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import PROXY_ARGS, Step
from bale.frontends.dockerfile.run import run_command

HISTORY_COMMENT = "buildkit.dockerfile.v0"


def go_quote(text: str) -> str:
    """Go's %q, as BuildKit quotes the command in its error: `"` and `\\` escaped."""
    return json.dumps(text, ensure_ascii=False)


def created_by(step: Step) -> str:
    """RUN with its build-args and argv, values expanded, CMD/ENTRYPOINT as their final argv;
    steps that make a layer end with `# buildkit`."""
    inst = step.instruction
    if isinstance(inst, ins.Run):
        env = dict(step.build_env)
        args = [f"{k}={env.get(k, v)}" for k, v in step.args if k not in PROXY_ARGS]
        prefix = [f"|{len(args)}", *args] if args else []
        return "RUN " + " ".join([*prefix, *run_command(step).argv]) + " # buildkit"
    if isinstance(inst, ins.Copy):
        sources = [*inst.sources, *(c.path for c in inst.contents)]
        return f"{inst.name} {' '.join(sources)} {inst.dest} # buildkit"
    if isinstance(inst, ins.Workdir):
        path = posixpath.normpath(posixpath.join(step.workdir or "/", inst.path))
        return f"WORKDIR {path} # buildkit"
    if isinstance(inst, ins.Env | ins.Label):
        return f"{inst.name} " + " ".join(f"{p.key}={p.value}" for p in inst.pairs)
    if isinstance(inst, ins.Cmd | ins.Entrypoint):
        argv = [*step.shell, *inst.command] if inst.prepend_shell else list(inst.command)
        return f"{inst.name} [" + " ".join(go_quote(a) for a in argv) + "]"
    if isinstance(inst, ins.User):
        return f"USER {inst.user}"
    if isinstance(inst, ins.Expose):
        # BuildKit formats the parsed ports as a Go slice: EXPOSE [80/tcp 53/udp].
        return "EXPOSE [" + " ".join(inst.ports) + "]"
    body = inst.original.strip()
    keyword, _, rest = body.partition(" ")
    return f"{keyword.upper()} {rest.strip()}"


def proxy_env(step: Step) -> tuple[str, ...]:
    """Proxy build-args reach every RUN, in both spellings, without being declared and
    without being part of the cache key, as BuildKit passes them."""
    declared = {key for key, _ in step.build_env}
    out = []
    for key, value in step.args:
        if key not in PROXY_ARGS:
            continue
        for name in (key.upper(), key.lower()):
            if name not in declared:
                declared.add(name)
                out.append(f"{name}={value}")
    return tuple(out)
