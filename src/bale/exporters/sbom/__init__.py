"""Software bills of materials: scan an image's layers for installed packages and write
them as an SPDX 2.3 document in an in-toto statement, as BuildKit attaches SBOMs.

    tree = LayeredTree([open_layer_1, open_layer_2], layer_ids=[diff_id_1, diff_id_2])
    results = scan_targets(tree, extras={"context": DirectoryTree(context_dir)})
    document = spdx_document(results[CORE].packages, name="app:1", subject=manifest, …)
    statement = sbom_statement(document, subject=manifest, subject_names=["app:1"], …)

Scanning reads files only; it never runs anything from the image. See `scan_targets`
for BuildKit's `BUILDKIT_SBOM_SCAN_CONTEXT` and `BUILDKIT_SBOM_SCAN_STAGE`.
"""

from bale.exporters.sbom.package import Package
from bale.exporters.sbom.scan import CORE, EXTRA_PREFIX, ScanResult, scan, scan_targets
from bale.exporters.sbom.spdx import PREDICATE, sbom_statement, spdx_document
from bale.exporters.sbom.tree import DirectoryTree, Entry, FileTree, LayeredTree, Limits

__all__ = [
    "CORE",
    "EXTRA_PREFIX",
    "PREDICATE",
    "DirectoryTree",
    "Entry",
    "FileTree",
    "LayeredTree",
    "Limits",
    "Package",
    "ScanResult",
    "sbom_statement",
    "scan",
    "scan_targets",
    "spdx_document",
]
