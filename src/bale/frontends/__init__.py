"""Frontends: Dockerfile and Jinja2 templates in, resolved per-platform build descriptions out."""
