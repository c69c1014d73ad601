"""Start-up recovery after a crash: no image stays in `saving`, `uploading` or `importing`, and no
blob or staged data is left without an image.

An upload that was cut off by a crash leaves its image in `saving` and a partial blob behind; a
stage leaves it in `uploading` with data in the staging area; an import (a background task of the
server) leaves it in `importing`. `recover` puts all of them back to `queued` without data (a retry
then succeeds; an interrupted import is recorded in `os_glance_failed_import`, as a failed one
is, and its task ends in failure), deletes blobs that no image refers to (in every configured
store), empties the staging area, and frees the quota every interrupted transfer reserved. A stage
that was complete but not yet imported is lost too: the client stages again. It must run while no
upload is in progress: `spyglass serve` runs it before it accepts requests, and `spyglass recover`
runs it by hand (stop every API node first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection

from spyglass.blobs import BlobStore
from spyglass.data import import_state, tasks
from spyglass.data import queries as dq
from spyglass.db.engine import Database
from spyglass.images import blob_refs, quotas, states
from spyglass.images import queries as q


@dataclass(frozen=True)
class Recovery:
    requeued: int
    orphans_removed: int
    staged_removed: int = 0


def recover(
    db: Database,
    store: BlobStore | Sequence[BlobStore],
    staging: BlobStore | None = None,
    task_ttl: timedelta = tasks.DEFAULT_TIME_TO_LIVE,
) -> Recovery:
    """Recover after a crash; `store` is the blob store, or every configured one (default first)."""
    stores = [store] if not isinstance(store, Sequence) else list(store)
    with db.write() as conn:
        requeued = dq.requeue_saving(conn)
        requeued += _requeue_imports(conn, stores[0].name)
        _end_interrupted_copies(conn)
        tasks.end_interrupted(conn, task_ttl)
        # No transfer runs now: what the interrupted ones reserved is free again.
        quotas.release_all(conn)
        referenced = dq.referenced_blob_keys(conn)
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


def _empty(store: BlobStore) -> int:
    keys = list(store.iter_keys())
    for key in keys:
        store.delete(key)
    return len(keys)


def _requeue_imports(conn: Connection, store_name: str) -> int:
    """Staged and importing images back to `queued` without data; their imports recorded as failed."""
    interrupted = (states.UPLOADING, states.IMPORTING)
    ids = dq.ids_in(conn, interrupted)
    properties, _tags = q.load_extras(conn, ids)
    dq.requeue_without_data(conn, ids, interrupted)
    for image_id in ids:
        import_state.end_interrupted(conn, image_id, properties.get(image_id, {}), store_name)
    return len(ids)


def _end_interrupted_copies(conn: Connection) -> None:
    """Active images whose copy-image was cut off: the lock goes, the stores it was copying to
    are recorded as failed (their partial copies are orphans, swept with the others)."""
    ids = dq.active_ids_with_property(conn, import_state.LOCK)
    properties, _tags = q.load_extras(conn, ids)
    for image_id in ids:
        import_state.end_interrupted(conn, image_id, properties.get(image_id, {}), None)
