"""Exporters: a build result into the store, archives, directories or a registry."""
