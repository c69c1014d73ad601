"""Start-up recovery after a crash: no image stays in `saving`, `uploading` or `importing`, and no
blob or staged data is left without an image.

An upload that was cut off by a crash leaves its image in `saving` and a partial blob behind; a
stage leaves it in `uploading` with data in the staging area; an import (a background task of the
server) leaves it in `importing`. `recover` puts all of them back to `queued` without data (a retry
then succeeds; an interrupted import is recorded in `os_glance_failed_import`, as a failed one
is), deletes blobs that no image refers to (in every configured store), and empties the staging
area. A stage that was complete
but not yet imported is lost too: the client stages again. It must run while no upload is in
progress: `spyglass serve` runs it before it accepts requests, and `spyglass recover` runs it by
hand (stop every API node first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from spyglass.blobs import BlobStore
from spyglass.data import import_state, imports
from spyglass.db.engine import Database
from spyglass.db.tables import image_locations, image_properties, images
from spyglass.images import blob_refs, states
from spyglass.images import queries as q
from spyglass.timeutil import utcnow


@dataclass(frozen=True)
class Recovery:
    requeued: int
    orphans_removed: int
    staged_removed: int = 0


def recover(
    db: Database, store: BlobStore | Sequence[BlobStore], staging: BlobStore | None = None
) -> Recovery:
    """Recover after a crash; `store` is the blob store, or every configured one (default first)."""
    stores = [store] if not isinstance(store, Sequence) else list(store)
    with db.write() as conn:
        requeued = conn.execute(
            update(images)
            .where(images.c.status == states.SAVING)
            .values(status=states.QUEUED, updated_at=utcnow())
        ).rowcount
        requeued += _requeue_imports(conn, stores[0].name)
        _end_interrupted_copies(conn)
        referenced = _referenced_keys(conn)
        # Shared blobs: realign reference counts with the images that refer to them.
        blob_refs.reconcile(conn)
    orphans = 0
    for each in stores:
        # Blob keys are unique across stores: a key no image refers to anywhere is an orphan.
        unreferenced = [key for key in each.iter_keys() if key not in referenced]
        for key in unreferenced:
            each.delete(key)
        orphans += len(unreferenced)
    staged_removed = _empty(staging) if staging is not None else 0
    return Recovery(requeued, orphans, staged_removed)


def _referenced_keys(conn: Connection) -> set[str]:
    """The blob keys of every location of every image (first ones and further ones)."""
    first = conn.execute(select(images.c.blob_key).where(images.c.blob_key.is_not(None))).scalars()
    further = conn.execute(select(image_locations.c.blob_key)).scalars()
    return {*first, *further}


def _empty(store: BlobStore) -> int:
    keys = list(store.iter_keys())
    for key in keys:
        store.delete(key)
    return len(keys)


def _requeue_imports(conn: Connection, store_name: str) -> int:
    """Staged and importing images back to `queued` without data; their imports recorded as failed."""
    interrupted = (states.UPLOADING, states.IMPORTING)
    ids = list(conn.execute(select(images.c.id).where(images.c.status.in_(interrupted))).scalars())
    properties, _tags = q.load_extras(conn, ids)
    for image_id in ids:
        conn.execute(
            update(images)
            .where(images.c.id == image_id, images.c.status.in_(interrupted))
            .values(status=states.QUEUED, updated_at=utcnow(), blob_key=None, store=None, **imports.NO_DATA)
        )
        import_state.end_interrupted(conn, image_id, properties.get(image_id, {}), store_name)
    return len(ids)


def _end_interrupted_copies(conn: Connection) -> None:
    """Active images whose copy-image was cut off: the lock goes, the stores it was copying to
    are recorded as failed (their partial copies are orphans, swept with the others)."""
    locked = select(image_properties.c.image_id).where(image_properties.c.name == import_state.LOCK)
    ids = list(
        conn.execute(
            select(images.c.id).where(images.c.id.in_(locked), images.c.status == states.ACTIVE)
        ).scalars()
    )
    properties, _tags = q.load_extras(conn, ids)
    for image_id in ids:
        import_state.end_interrupted(conn, image_id, properties.get(image_id, {}), None)
