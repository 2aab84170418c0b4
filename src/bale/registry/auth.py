"""Authentication vocabulary: WWW-Authenticate challenges and repository scopes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r'\s*([a-zA-Z_][\w.-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercased: "basic" or "bearer"
    params: tuple[tuple[str, str], ...] = ()

    def param(self, key: str) -> str:
        return dict(self.params).get(key, "")

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        """The first challenge of a WWW-Authenticate header (registries send one)."""
        header = header.strip()
        if not header:
            return None
        scheme, _, rest = header.partition(" ")
        params: list[tuple[str, str]] = []
        pos = 0
        while pos < len(rest):
            match = _PARAM.match(rest, pos)
            if match is None or match.end() == pos:
                break
            value = match.group(2) if match.group(2) is not None else match.group(3)
            params.append((match.group(1).lower(), value.replace('\\"', '"')))
            pos = match.end()
        return cls(scheme.lower(), tuple(params))


@dataclass(frozen=True, order=True)
class Scope:
    """`repository:team/app:pull,push` — what a bearer token is asked to allow."""

    repository: str
    actions: tuple[str, ...] = ("pull",)

    def __str__(self) -> str:
        return f"repository:{self.repository}:{','.join(self.actions)}"

    @classmethod
    def pull(cls, repository: str) -> Scope:
        return cls(repository, ("pull",))

    @classmethod
    def push(cls, repository: str) -> Scope:
        return cls(repository, ("pull", "push"))

    @classmethod
    def parse_many(cls, text: str) -> tuple[Scope, ...]:
        """Scopes named by a challenge's `scope` parameter (space-separated)."""
        out = []
        for item in text.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name:
                out.append(cls(name, tuple(sorted(a for a in actions.split(",") if a))))
        return tuple(out)


def merge_scopes(scopes: tuple[Scope, ...]) -> tuple[Scope, ...]:
    """One scope per repository with the union of actions, in a stable order."""
    by_repo: dict[str, set[str]] = {}
    for scope in scopes:
        by_repo.setdefault(scope.repository, set()).update(scope.actions)
    return tuple(Scope(repo, tuple(sorted(actions))) for repo, actions in sorted(by_repo.items()))
