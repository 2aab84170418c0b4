"""The local store: content, metadata, garbage collection, snapshots and images."""
