"""Why a step missed the cache, in one short line.

What each step's key was made of is kept per step (its place in the build: platform, stage,
position), hashed so that no value — a build-arg, a file's bytes — is ever stored. When a
step misses, its parts are compared with the last ones of the same step: the first that
differs is the reason (the parent state, an argument or variable by name, a file a COPY or
bind mount reads, the base image).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bale.frontends.graph import CopyOp, ExecOp, ImageOp, Vertex

_MAX_FILES_BLOB = 64 << 20  # a kept file list is at most this big once decompressed


def _h(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class KeyParts:
    """What a step's cache key is made of, each part hashed."""

    fields: dict[str, str]  # definition field (env: one per variable, "env:NAME") → hash
    inputs: tuple[str, ...]  # the keys of the states the step reads
    content: str  # hash of what it reads from outside the graph
    files: dict[str, str] = field(default_factory=dict)  # path → entry hash (COPY, binds)

    @staticmethod
    def of(
        v: Vertex, inputs: Sequence[str], content: str, files: Sequence[tuple[str, str]]
    ) -> KeyParts:
        fields: dict[str, str] = {}
        for name, value in v.op.definition().items():
            if name == "env" and isinstance(value, list):
                for item in value:
                    key, _, val = str(item).partition("=")
                    fields[f"env:{key}"] = _h(val)
            else:
                fields[name] = _h(value)
        return KeyParts(fields, tuple(inputs), _h(content), {p: _h(d) for p, d in files})

    def encode(self) -> tuple[str, bytes]:
        """(JSON of the fields, inputs and content; compressed file list)."""
        head = json.dumps({"fields": self.fields, "inputs": self.inputs, "content": self.content})
        return head, zlib.compress(json.dumps(self.files).encode(), 1)

    @staticmethod
    def decode(head: str, files: bytes | None) -> KeyParts | None:
        try:
            obj: dict[str, Any] = json.loads(head)
            listed: dict[str, str] = {}
            if files:
                d = zlib.decompressobj()
                raw = d.decompress(files, _MAX_FILES_BLOB)
                listed = json.loads(raw) if not d.unconsumed_tail else {}
            return KeyParts(
                {str(k): str(v) for k, v in obj["fields"].items()},
                tuple(str(i) for i in obj["inputs"]),
                str(obj["content"]),
                {str(k): str(v) for k, v in listed.items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError, zlib.error):
            return None  # an unreadable record explains nothing


def explain(
    v: Vertex,
    now: KeyParts,
    before: KeyParts | None,
    same_key: bool,
    input_kinds: Mapping[int, str],
) -> str:
    """Why `v` is not a cache hit. `same_key`: the key is the one last seen for this step
    (so its record is gone); `input_kinds[i]` is the kind of op input i comes from."""
    if before is None:
        return "no earlier build of this step"
    if same_key:
        return "the cache has no record for this key (pruned, or its layer is gone)"
    for i, (a, b) in enumerate(zip(now.inputs, before.inputs, strict=False)):
        if a != b:
            if i == 0:
                if input_kinds.get(0) == ImageOp.kind:
                    return "the base image changed"
                return "the step before it changed"
            return "the filesystem it mounts from another stage or image changed"
    if len(now.inputs) != len(before.inputs):
        return "what it mounts changed"
    changed = [k for k in now.fields if before.fields.get(k) != now.fields[k]]
    removed = [k for k in before.fields if k not in now.fields]
    for name in (*changed, *removed):
        if name.startswith("env:"):
            var = name[4:]
            if name in removed:
                return f"variable {var} is no longer set"
            if name not in before.fields:
                return f"variable {var} is new"
            return f"variable {var} changed"
    if changed or removed:
        return _field_reason(v, (changed or removed)[0])
    if now.files or before.files:
        reason = _files_reason(now.files, before.files)
        if reason:
            return reason
    if now.content != before.content:
        return "a downloaded source changed" if isinstance(v.op, CopyOp) else "its sources changed"
    return "no cache record for this key"


def _field_reason(v: Vertex, name: str) -> str:
    words = {
        "argv": "the command changed",
        "cwd": "the working directory changed",
        "user": "the user changed",
        "platform": "the platform changed",
        "network": "the network mode changed",
        "mounts": "its mounts changed",
        "files": "a heredoc changed",
        "sources": "the sources it names changed",
        "dest": "the destination changed",
        "chown": "--chown changed",
        "chmod": "--chmod changed",
        "contents": "a heredoc changed",
        "urls": "the URLs it downloads changed",
        "excludes": "--exclude changed",
        "path": "the directory changed",
    }
    if isinstance(v.op, ExecOp) and name == "argv":
        return "the command changed"
    return words.get(name, f"its {name} changed")


def _files_reason(now: Mapping[str, str], before: Mapping[str, str]) -> str:
    for path, digest in now.items():
        old = before.get(path)
        if old is None:
            return f"file {path} is new"
        if old != digest:
            return f"file {path} changed"
    for path in before:
        if path not in now:
            return f"file {path} was removed"
    return ""
