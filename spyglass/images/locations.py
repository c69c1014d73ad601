"""Where an image's data lives: one location per store, as Glance's multi-store keeps them.

The first location is the image row's `store` and `blob_key` (a null store is the default store:
rows from before there were several stores); further ones, written by copy-image or an import to
several stores, are rows of `image_locations`, oldest first. Every location's blob is counted by
spyglass.blob_refs: an image takes one reference per location and gives each back when it is
deleted or a location is removed; the bytes go when no image refers to them any more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection

from spyglass.blobs import BlobStore
from spyglass.blobs.registry import StoreSet
from spyglass.images import blob_refs
from spyglass.images import queries as q
from spyglass.images.queries import ImageRecord, Location

__all__ = ["Location", "add", "delete_blobs", "of", "release_all", "remove", "store_names", "store_of"]

log = logging.getLogger(__name__)


def of(record: ImageRecord) -> list[Location]:
    """Every location of the image's data, first one first ("" names the default store)."""
    if not record.blob_key:
        return []
    return [Location(record.store or "", record.blob_key), *record.extra_locations]


def store_names(record: ImageRecord, default: str) -> list[str]:
    return [location.store or default for location in of(record)]


def add(conn: Connection, record: ImageRecord, store_name: str, key: str) -> None:
    """One more location of the image's data (in a store that does not hold it yet)."""
    q.add_location(conn, record.id, Location(store_name, key))
    blob_refs.track(conn, key, store_name, record)


def remove(conn: Connection, record: ImageRecord, location: Location) -> Location | None:
    """Forget one location of the image; returns it when its bytes may now be deleted.

    Removing the first location makes the oldest further one the first."""
    first, *rest = of(record)
    if location == first:
        successor = rest[0]
        q.update_columns(conn, record.id, store=successor.store, blob_key=successor.key)
        location_row = successor
    else:
        location_row = location
    q.delete_location(conn, record.id, location_row.store)
    return location if blob_refs.release(conn, location.key) else None


def release_all(conn: Connection, record: ImageRecord) -> list[Location]:
    """The image row is gone (its further locations with it): give back every reference.

    Returns the locations whose bytes the caller deletes after commit."""
    return [location for location in of(record) if blob_refs.release(conn, location.key)]


def delete_blobs(stores: StoreSet, found: Iterable[Location]) -> None:
    """Delete the bytes of locations no image refers to any more (after the commit)."""
    for location in found:
        store = store_of(stores, location)
        if store is None:
            log.warning(
                "Blob %s is in store %r, which is not configured: left in place", location.key, location.store
            )
            continue
        store.delete(location.key)


def store_of(stores: StoreSet, location: Location) -> BlobStore | None:
    """The configured store holding a location, if it is configured."""
    return stores.get(location.store) if location.store else stores.default
