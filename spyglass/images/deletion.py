"""Deleting an image: into the recycle bin when a retention is configured, for good otherwise.

With `recycle_retention_days` > 0, DELETE moves the image to `pending_delete` and records in
`recycle_bin` the status it had and when it may be purged. Its data, members (with their
statuses), properties, tags and usage stay; only its owner and admins see it (spyglass.visibility)
until it is restored (spyglass.recycle_bin) or purged. Deleting an image already in the bin
purges it at once. With retention 0 (the default) DELETE removes the image, as Glance does.

Removing an image releases its blob reference (spyglass.blob_refs): the caller deletes the bytes
after commit only when no other image (a copy, an identical upload) still refers to them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict
from spyglass.images import locations, notify, states
from spyglass.images import queries as q
from spyglass.images.impact import Safeguards, check_impact
from spyglass.images.locations import Location
from spyglass.images.queries import ImageRecord
from spyglass.timeutil import isotime, utcnow

log = logging.getLogger(__name__)


def dispose(conn: Connection, ctx: RequestContext, record: ImageRecord, guard: Safeguards) -> list[Location]:
    """Delete an image the caller may delete (authorized, not protected), in its transaction.

    Returns the locations whose bytes the caller deletes after commit (spyglass.locations).
    """
    if record.status == states.PENDING_DELETE:
        return purge(conn, ctx, record)
    check_impact(conn, record, guard, "delete")
    if guard.recycle_retention_days > 0:
        _into_bin(conn, ctx, record, guard.recycle_retention_days)
        return []
    return _remove(conn, ctx, record, events.IMAGE_DELETED)


def purge(conn: Connection, ctx: RequestContext | None, record: ImageRecord) -> list[Location]:
    """Remove an image from the recycle bin for good (ctx None: the scheduled purge)."""
    return _remove(conn, ctx, record, events.IMAGE_PURGED)


def _remove(conn: Connection, ctx: RequestContext | None, record: ImageRecord, kind: str) -> list[Location]:
    """Delete the image for good (the `kind` event says how); every store holding its data gives
    its reference back."""
    before, after = {"status": record.status}, {"status": states.DELETED}
    events.record(conn, ctx, record.id, record.owner, kind, before=before, after=after)
    if kind == events.IMAGE_DELETED:
        # A purge from the recycle bin says nothing more to Glance's consumers: they had image.delete.
        notify.deleted(conn, record, states.DELETED)
    q.delete_row(conn, record.id)
    return locations.release_all(conn, record)


def _into_bin(conn: Connection, ctx: RequestContext, record: ImageRecord, days: int) -> None:
    current = record.status
    now = utcnow()
    if not q.set_status(conn, record.id, current, states.PENDING_DELETE, updated_at=now):
        raise Conflict(q.STATUS_RACE)
    purge_after = now + timedelta(days=days)
    q.put_in_bin(conn, record.id, current, now, purge_after, (ctx.user_id, ctx.project_id))
    notify.deleted(conn, record, states.PENDING_DELETE)
    events.record(
        conn,
        ctx,
        record.id,
        record.owner,
        events.IMAGE_DELETED,
        before={"status": current},
        after={"status": states.PENDING_DELETE, "purge_after": isotime(purge_after)},
    )


def purge_expired(db: Database, store: StoreSet, now: datetime | None = None) -> int:
    """Purge every image whose retention ended; the number purged. Safe to run concurrently."""
    now = now or utcnow()
    with db.read() as conn:
        image_ids = q.due_for_purge(conn, now)
    purged = 0
    for image_id in image_ids:
        with db.write() as conn:
            done, unreferenced = _purge_if_due(conn, image_id, now)
        purged += done
        locations.delete_blobs(store, unreferenced)
    if purged:
        log.info("purged %d image(s) from the recycle bin", purged)
    return purged


def _purge_if_due(conn: Connection, image_id: str, now: datetime) -> tuple[bool, list[Location]]:
    """Checked again under the lock: restored (and maybe deleted again) since the list was read?"""
    record = q.fetch_image(conn, image_id, None, lock=True)
    due = q.purge_after(conn, image_id)
    if record is None or record.status != states.PENDING_DELETE or due is None or due > now:
        return False, []
    return True, purge(conn, None, record)
