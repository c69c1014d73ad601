"""The recycle bin as its users see it: restore an image, list what a project has in the bin.

`POST /v2/images/{id}/actions/restore` (owner or admin) returns an image in `pending_delete` to the
status it had when it was deleted, with its members and their statuses as they were. An image
deleted in the middle of an upload or import had no complete data: it comes back `queued`.
spyglass.recycle owns moving images into the bin and purging them.
"""

from __future__ import annotations

from typing import Any

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, NotFound
from spyglass.images import queries as q
from spyglass.images import states
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.images.queries import BinEntry, ImageRecord
from spyglass.timeutil import isotime

# Statuses an image comes back to; anything else (data still arriving) comes back queued.
RESTORABLE = frozenset({states.QUEUED, states.ACTIVE, states.KILLED, states.DEACTIVATED})


# Added to the 404 of a restore when the bin is off: the same for every id, seen or unseen.
BIN_OFF = (
    "The recycle bin is off (recycle_retention_days = 0): a deleted image is removed at once "
    "and cannot be restored."
)


def restore_image(db: Database, ctx: RequestContext, image_id: str, bin_on: bool = True) -> ImageRecord:
    try:
        return _restore(db, ctx, image_id)
    except NotFound as missing:
        if bin_on:
            raise
        raise NotFound(f"{missing.message} {BIN_OFF}") from None


def _restore(db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.RESTORE_IMAGE, lock=True)
        if record.status != states.PENDING_DELETE:
            raise Conflict(f"Image {image_id} is not in the recycle bin (its status is {record.status}).")
        found = q.take_out_of_bin(conn, image_id)
        target = found if found in RESTORABLE else states.QUEUED
        if not q.set_status(conn, image_id, states.PENDING_DELETE, target):
            raise Conflict(q.STATUS_RACE)
        events.record(
            conn,
            ctx,
            image_id,
            record.owner,
            events.IMAGE_RESTORED,
            before={"status": states.PENDING_DELETE},
            after={"status": target},
        )
        fresh = q.fetch_image(conn, image_id, ctx.project_id)
    assert fresh is not None
    return fresh


def list_bin(db: Database, ctx: RequestContext) -> list[dict[str, Any]]:
    """The caller's project's images in the bin (an admin's: every project's), soonest purge first."""
    authorize(ctx, Action.GET_RECYCLE_BIN)
    owner = None if permits(ctx, Action.GET_ALL_RECYCLE_BIN, Target()) else (ctx.project_id or "")
    with db.read() as conn:
        return [_entry(e) for e in q.bin_entries(conn, owner)]


def _entry(entry: BinEntry) -> dict[str, Any]:
    return {
        "image_id": entry.image_id,
        "name": entry.name,
        "owner": entry.owner,
        "size": entry.size,
        "previous_status": entry.previous_status,
        "deleted_at": isotime(entry.deleted_at),
        "purge_after": isotime(entry.purge_after),
        "deleted_by": {"user_id": entry.deleted_by_user, "project_id": entry.deleted_by_project},
    }
