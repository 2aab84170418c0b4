"""Copy one image between stores on the same machine: its documents and the blobs it holds
(hard links, not copies), then its name. A platform the source store lacks stays missing,
as it is in the source."""

from __future__ import annotations

from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index, Manifest
from bale.store.local import Store


def copy_image(source: Store, dest: Store, name: str, target: Descriptor) -> None:
    """Make `name` in `dest` what it is in `source` (`target`, an index or a manifest)."""
    with dest.lease() as lease:
        pending = [target]
        while pending:
            desc = pending.pop()
            if not source.content.exists(desc.digest):
                continue
            lease.add(desc.digest)
            dest.content.adopt(source.content, desc.digest)
            if mediatype.is_index(desc.media_type):
                data = source.read_json_blob(desc)
                pending.extend(Index.parse(data).manifests)
                dest.record_refs(desc.digest, data, desc.media_type)
            elif mediatype.is_manifest(desc.media_type):
                data = source.read_json_blob(desc)
                pending.extend(Manifest.parse(data).children())
                dest.record_refs(desc.digest, data, desc.media_type)
        dest.set_image(name, target)
