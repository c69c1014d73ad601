"""Reference-counted blobs: copies and identical uploads share one stored blob.

The `blobs` table counts the images that refer to each blob key. A copy (spyglass.copies) takes
one more reference on its source's blob; deleting an image releases its reference and the bytes
are deleted only when the count reaches zero. After an upload completes, `adopt` records the new
blob, or, when the store already holds a blob with the same size, md5 and multihash that an image
of the same owner project refers to, points the image at that one and deletes the new bytes
(deduplication within a store and a project). Never across projects: sharing bytes with another
project's image would tell the uploader that someone else holds the same data (a copy into my
project, spyglass.copies, shares its source's blob: I could see that image anyway).

Blob keys that some path wrote without `adopt` have no row; for them the images table itself is
the count (`images.blob_key` is indexed). `reconcile`, run by start-up recovery, realigns the
counts with the images table after a crash.
"""

from __future__ import annotations

from sqlalchemy import Connection

from spyglass.blobs import BlobNotFound, BlobStore
from spyglass.db.engine import Database
from spyglass.images import blob_queries as bq
from spyglass.images.blob_queries import Content, ImageBlob

__all__ = ["adopt", "reconcile", "release", "retain", "stored_bytes", "track"]

# One statement each: start-up recovery's realignment and the bytes the tracked blobs occupy.
reconcile = bq.reconcile
stored_bytes = bq.stored_bytes


def adopt(db: Database, store: BlobStore, image_id: str, key: str) -> None:
    """Record the blob an upload just completed, or swap it for an identical one already stored."""
    with db.write() as conn:
        image = bq.image_blob(conn, image_id)
        if image is None or image.blob_key != key or bq.is_tracked(conn, key):
            # Deleted or replaced meanwhile (its release counted it), or already copied and tracked.
            return
        _one_adopter_per_content(conn, image)
        twin = _find_twin(conn, store, image, key)
        if twin is None:
            bq.track(conn, key, store.name, image)
            return
        bq.point_image_at(conn, image_id, twin)
    store.delete(key)


def retain(conn: Connection, key: str, store_name: str, source: Content) -> None:
    """One more image (just inserted) refers to `key`; `source` has its size and hashes."""
    if not bq.take_reference(conn, key):
        bq.track(conn, key, store_name, source)


def release(conn: Connection, key: str | None) -> str | None:
    """An image stopped referring to `key` (its row is already gone or changed).

    Returns the key when no image refers to it any more: the caller deletes the bytes after commit.
    The decrement takes the row lock, so concurrent releases of one blob see each other.
    """
    if key is None:
        return None
    left = bq.drop_reference(conn, key)
    if left is not None and left > 0:
        return None
    references = bq.references(conn, key)
    if references:
        # The count had drifted (or the key is untracked): trust the images table.
        if left is not None:
            bq.set_refcount(conn, key, references)
        return None
    bq.forget(conn, key)
    return key


def track(conn: Connection, key: str, store_name: str, source: Content) -> None:
    """Count a blob just written for an image's further location (spyglass.locations)."""
    bq.track(conn, key, store_name, source)


# ---- helpers --------------------------------------------------------------------------------------


def _one_adopter_per_content(conn: Connection, image: ImageBlob) -> None:
    """Let identical uploads finishing at the same time see each other's blob on PostgreSQL.

    Otherwise each would look for a twin before the other's row commits and both would keep their
    bytes. The lock lasts until commit."""
    if image.os_hash_value is not None:
        bq.lock_content(conn, image.os_hash_value)


def _find_twin(conn: Connection, store: BlobStore, image: ImageBlob, key: str) -> str | None:
    """A tracked blob of this store with the same content, now holding one more reference."""
    if image.os_hash_value is None or image.size is None:
        return None
    for twin in bq.twin_candidates(conn, store.name, image, key):
        if not _present(store, twin, image.size):
            continue
        # Only while still referenced: a concurrent release that reached zero wins.
        if bq.take_reference(conn, twin, only_if_referenced=True):
            return twin
    return None


def _present(store: BlobStore, key: str, size: int) -> bool:
    try:
        return store.size(key) == size
    except BlobNotFound:
        return False
