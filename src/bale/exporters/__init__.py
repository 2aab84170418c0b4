"""Exporters: a build result assembled into image documents, then written to the store, an
archive, a directory, or a registry (see base.Exporter)."""
