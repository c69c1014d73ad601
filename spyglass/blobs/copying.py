"""One blob copied from a store into another (or the same) store."""

from __future__ import annotations

from spyglass.blobs.base import BlobStore
from spyglass.blobs.filesystem import FilesystemStore


def copy_blob(source: BlobStore, source_key: str, target: BlobStore, key: str) -> None:
    """Blob `source_key` of `source` becomes blob `key` of `target`.

    Between two directories of one filesystem that is a hard link, instant whatever the size
    (blobs are never changed once committed); otherwise the bytes are streamed through a writer.
    Raises BlobNotFound when the source has no such blob.
    """
    if (
        isinstance(source, FilesystemStore)
        and isinstance(target, FilesystemStore)
        and target.link(source, source_key, key)
    ):
        return
    writer = target.writer(key)
    try:
        for chunk in source.read(source_key):
            writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
