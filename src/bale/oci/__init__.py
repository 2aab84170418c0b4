"""Pure OCI value types: no I/O happens in this package."""

from bale.oci.config import HistoryEntry, ImageConfig, RuntimeConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest
from bale.oci.platform import Platform, host_platform

__all__ = [
    "Descriptor",
    "Digest",
    "HistoryEntry",
    "ImageConfig",
    "Index",
    "Manifest",
    "Platform",
    "RuntimeConfig",
    "host_platform",
]
