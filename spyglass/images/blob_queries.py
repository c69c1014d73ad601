"""Queries on the `blobs` table, the reference counts of stored blobs (spyglass.images.blob_refs
owns when a reference is taken or given back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, delete, exists, func, or_, select, update

from spyglass.db import upsert
from spyglass.db.tables import blobs, image_locations, images
from spyglass.timeutil import utcnow


class Content(Protocol):
    """What identifies a blob's content: its size and hashes (an image row has them)."""

    @property
    def size(self) -> int | None: ...
    @property
    def checksum(self) -> str | None: ...
    @property
    def os_hash_algo(self) -> str | None: ...
    @property
    def os_hash_value(self) -> str | None: ...


@dataclass(frozen=True)
class ImageBlob:
    """An image's first location's blob key, its owner, and the content it holds."""

    blob_key: str | None
    owner: str | None
    size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None


def image_blob(conn: Connection, image_id: str) -> ImageBlob | None:
    """The image's blob, its row locked until commit on PostgreSQL; None when there is no image."""
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
    row = conn.execute(stmt).first()
    return None if row is None else ImageBlob(*row)


def point_image_at(conn: Connection, image_id: str, key: str) -> None:
    """The image's data is now the blob at `key` (same content; updated_at stays)."""
    conn.execute(update(images).where(images.c.id == image_id).values(blob_key=key))


def lock_content(conn: Connection, os_hash_value: str) -> None:
    """Hold, until commit, PostgreSQL's advisory lock on this content (SQLite writers are
    serialized already, spyglass.db.engine)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(os_hash_value, 0))))


def is_tracked(conn: Connection, key: str) -> bool:
    return bool(conn.execute(select(exists().where(blobs.c.blob_key == key))).scalar())


def references(conn: Connection, key: str) -> int:
    """Images whose data is at `key`, as their first location or a further one."""
    first = conn.execute(select(func.count()).where(images.c.blob_key == key)).scalar_one()
    further = conn.execute(select(func.count()).where(image_locations.c.blob_key == key)).scalar_one()
    return int(first) + int(further)


def take_reference(conn: Connection, key: str, *, only_if_referenced: bool = False) -> bool:
    """Count one more reference to a tracked blob; False when it is not tracked (or, with
    `only_if_referenced`, its count already reached zero)."""
    stmt = update(blobs).where(blobs.c.blob_key == key)
    if only_if_referenced:
        stmt = stmt.where(blobs.c.refcount > 0)
    return conn.execute(stmt.values(refcount=blobs.c.refcount + 1)).rowcount > 0


def drop_reference(conn: Connection, key: str) -> int | None:
    """Count one reference less (taking the row lock); the count left, None when not tracked."""
    left: int | None = conn.execute(
        update(blobs)
        .where(blobs.c.blob_key == key)
        .values(refcount=blobs.c.refcount - 1)
        .returning(blobs.c.refcount)
    ).scalar()
    return left


def set_refcount(conn: Connection, key: str, refcount: int) -> None:
    conn.execute(update(blobs).where(blobs.c.blob_key == key).values(refcount=refcount))


def forget(conn: Connection, key: str) -> None:
    conn.execute(delete(blobs).where(blobs.c.blob_key == key))


def track(conn: Connection, key: str, store_name: str, content: Content) -> None:
    """Count a blob not tracked yet, with the references the images table has to it."""
    stmt = upsert.insert(conn.dialect.name, blobs).values(
        blob_key=key,
        store=store_name,
        refcount=references(conn, key),
        size=content.size or 0,
        checksum=content.checksum,
        os_hash_algo=content.os_hash_algo,
        os_hash_value=content.os_hash_value,
        created_at=utcnow(),
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[blobs.c.blob_key]))


def twin_candidates(conn: Connection, store_name: str, image: ImageBlob, key: str) -> list[str]:
    """Referenced blobs of this store, other than `key`, with the image's content, that are the
    data of an image of the same owner project."""
    candidates = select(blobs.c.blob_key).where(
        blobs.c.store == store_name,
        blobs.c.os_hash_value == image.os_hash_value,
        blobs.c.os_hash_algo == image.os_hash_algo,
        blobs.c.checksum == image.checksum,
        blobs.c.size == image.size,
        blobs.c.blob_key != key,
        blobs.c.refcount > 0,
        _used_by(image.owner),
    )
    return [str(twin) for twin in conn.execute(candidates).scalars().all()]


def _used_by(owner: str | None) -> ColumnElement[bool]:
    """The blob is the data of an image of this owner project (first or further location)."""
    first = exists().where(images.c.blob_key == blobs.c.blob_key, images.c.owner == owner)
    further = exists().where(
        image_locations.c.blob_key == blobs.c.blob_key,
        images.c.id == image_locations.c.image_id,
        images.c.owner == owner,
    )
    return or_(first, further)


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
