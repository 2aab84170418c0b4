"""Frontends: Dockerfile and Jinja2 templates in, resolved per-platform build descriptions out.

Modules: `dockerfile` (parser, typed instructions, shell lexer, stages, resolve, checks,
outline, run), `dockerignore` (context filtering), `jinja` (templates rendered per platform),
`load` (reading `-f`, one parsed Dockerfile per platform). docs/dockerfile.md describes them.
"""
