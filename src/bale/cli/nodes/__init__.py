"""Builders of several nodes: one build fanned out over machines per platform.

- `state`: the builders and their nodes, kept in `ROOT/builders.json`.
- `schedule`: which node builds which platform (pure).
- `transport`: how a node is reached — the system `ssh` client, or a local process — and
  the framing of what goes over it (I/O lives here and in `coordinator` only).
- `context_tar`: the build context as the node receives it (what `.dockerignore` keeps).
- `serve`: the node side (`bale node hello|build`, hidden).
- `coordinator`: runs the nodes, merges their progress, assembles one index, exports once.
"""
