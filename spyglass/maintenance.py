"""Start-up recovery after a crash: no image stays in `saving`, no blob is left without an image.

An upload that was cut off by a crash leaves its image in `saving` and a partial blob behind.
`recover` puts such images back to `queued` (a retry then succeeds) and deletes blobs that no
image refers to. It must run while no upload is in progress: `spyglass serve` runs it before it
accepts requests, and `spyglass recover` runs it by hand (stop every API node first).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from spyglass import states
from spyglass.blobs import BlobStore
from spyglass.db.engine import Database
from spyglass.db.tables import images
from spyglass.timeutil import utcnow


@dataclass(frozen=True)
class Recovery:
    requeued: int
    orphans_removed: int


def recover(db: Database, store: BlobStore) -> Recovery:
    with db.write() as conn:
        requeued = conn.execute(
            update(images)
            .where(images.c.status == states.SAVING)
            .values(status=states.QUEUED, updated_at=utcnow())
        ).rowcount
        referenced = set(
            conn.execute(select(images.c.blob_key).where(images.c.blob_key.is_not(None))).scalars()
        )
    orphans = [key for key in store.iter_keys() if key not in referenced]
    for key in orphans:
        store.delete(key)
    return Recovery(requeued, len(orphans))
