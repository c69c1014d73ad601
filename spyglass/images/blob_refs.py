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

from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, exists, func, or_, select, update

from spyglass.blobs import BlobNotFound, BlobStore
from spyglass.db import upsert
from spyglass.db.engine import Database
from spyglass.db.tables import blobs, image_locations, images
from spyglass.timeutil import utcnow


def adopt(db: Database, store: BlobStore, image_id: str, key: str) -> None:
    """Record the blob an upload just completed, or swap it for an identical one already stored."""
    with db.write() as conn:
        image = _image_blob(conn, image_id)
        if image is None or image["blob_key"] != key or _tracked(conn, key):
            # Deleted or replaced meanwhile (its release counted it), or already copied and tracked.
            return
        _one_adopter_per_content(conn, image)
        twin = _find_twin(conn, store, image, key)
        if twin is None:
            _track(conn, key, store.name, image)
            return
        conn.execute(update(images).where(images.c.id == image_id).values(blob_key=twin))
    store.delete(key)


def retain(conn: Connection, key: str, store_name: str, source: Any) -> None:
    """One more image (just inserted) refers to `key`; `source` maps its size and hashes."""
    taken = conn.execute(update(blobs).where(blobs.c.blob_key == key).values(refcount=blobs.c.refcount + 1))
    if taken.rowcount == 0:
        _track(conn, key, store_name, source)


def release(conn: Connection, key: str | None) -> str | None:
    """An image stopped referring to `key` (its row is already gone or changed).

    Returns the key when no image refers to it any more: the caller deletes the bytes after commit.
    The decrement takes the row lock, so concurrent releases of one blob see each other.
    """
    if key is None:
        return None
    left = conn.execute(
        update(blobs)
        .where(blobs.c.blob_key == key)
        .values(refcount=blobs.c.refcount - 1)
        .returning(blobs.c.refcount)
    ).scalar()
    if left is not None and left > 0:
        return None
    references = _references(conn, key)
    if references:
        # The count had drifted (or the key is untracked): trust the images table.
        if left is not None:
            conn.execute(update(blobs).where(blobs.c.blob_key == key).values(refcount=references))
        return None
    conn.execute(delete(blobs).where(blobs.c.blob_key == key))
    return key


def track(conn: Connection, key: str, store_name: str, source: Any) -> None:
    """Count a blob just written for an image's further location (spyglass.locations)."""
    _track(conn, key, store_name, source)


def reconcile(conn: Connection) -> None:
    """Realign every count with the images table; forget blobs no image refers to."""
    first = (
        select(func.count()).where(images.c.blob_key == blobs.c.blob_key).correlate(blobs).scalar_subquery()
    )
    further = (
        select(func.count())
        .where(image_locations.c.blob_key == blobs.c.blob_key)
        .correlate(blobs)
        .scalar_subquery()
    )
    conn.execute(update(blobs).values(refcount=first + further))
    conn.execute(delete(blobs).where(blobs.c.refcount <= 0))


def stored_bytes(conn: Connection) -> int:
    """The bytes the tracked blobs occupy (each shared blob once)."""
    return int(conn.execute(select(func.coalesce(func.sum(blobs.c.size), 0))).scalar_one())


# ---- helpers --------------------------------------------------------------------------------------


def _image_blob(conn: Connection, image_id: str) -> Any:
    stmt = select(
        images.c.blob_key,
        images.c.owner,
        images.c.size,
        images.c.checksum,
        images.c.os_hash_algo,
        images.c.os_hash_value,
    ).where(images.c.id == image_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).mappings().first()


def _one_adopter_per_content(conn: Connection, image: Any) -> None:
    """Let identical uploads finishing at the same time see each other's blob on PostgreSQL.

    Otherwise each would look for a twin before the other's row commits and both would keep their
    bytes. The lock lasts until commit. SQLite writers are serialized already (spyglass.db.engine)."""
    if conn.dialect.name != "postgresql" or image["os_hash_value"] is None:
        return
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(image["os_hash_value"], 0))))


def _tracked(conn: Connection, key: str) -> bool:
    return bool(conn.execute(select(exists().where(blobs.c.blob_key == key))).scalar())


def _references(conn: Connection, key: str) -> int:
    """Images whose data is at `key`, as their first location or a further one."""
    first = conn.execute(select(func.count()).where(images.c.blob_key == key)).scalar_one()
    further = conn.execute(select(func.count()).where(image_locations.c.blob_key == key)).scalar_one()
    return int(first) + int(further)


def _find_twin(conn: Connection, store: BlobStore, image: Any, key: str) -> str | None:
    """A tracked blob of this store with the same content, now holding one more reference."""
    if image["os_hash_value"] is None or image["size"] is None:
        return None
    candidates = select(blobs.c.blob_key).where(
        blobs.c.store == store.name,
        blobs.c.os_hash_value == image["os_hash_value"],
        blobs.c.os_hash_algo == image["os_hash_algo"],
        blobs.c.checksum == image["checksum"],
        blobs.c.size == image["size"],
        blobs.c.blob_key != key,
        blobs.c.refcount > 0,
        _used_by(image["owner"]),
    )
    for twin in conn.execute(candidates).scalars().all():
        if not _present(store, twin, image["size"]):
            continue
        # Only while still referenced: a concurrent release that reached zero wins.
        taken = conn.execute(
            update(blobs)
            .where(blobs.c.blob_key == twin, blobs.c.refcount > 0)
            .values(refcount=blobs.c.refcount + 1)
        )
        if taken.rowcount == 1:
            return str(twin)
    return None


def _used_by(owner: str | None) -> ColumnElement[bool]:
    """The blob is the data of an image of this owner project (first or further location)."""
    first = exists().where(images.c.blob_key == blobs.c.blob_key, images.c.owner == owner)
    further = exists().where(
        image_locations.c.blob_key == blobs.c.blob_key,
        images.c.id == image_locations.c.image_id,
        images.c.owner == owner,
    )
    return or_(first, further)


def _present(store: BlobStore, key: str, size: int) -> bool:
    try:
        return store.size(key) == size
    except BlobNotFound:
        return False


def _track(conn: Connection, key: str, store_name: str, source: Any) -> None:
    stmt = upsert.insert(conn.dialect.name, blobs).values(
        blob_key=key,
        store=store_name,
        refcount=_references(conn, key),
        size=source["size"] or 0,
        checksum=source["checksum"],
        os_hash_algo=source["os_hash_algo"],
        os_hash_value=source["os_hash_value"],
        created_at=utcnow(),
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[blobs.c.blob_key]))
