"""The recycle bin as its users see it: restore an image, list what a project has in the bin.

`POST /v2/images/{id}/actions/restore` (owner or admin) returns an image in `pending_delete` to the
status it had when it was deleted, with its members and their statuses as they were. An image
deleted in the middle of an upload or import had no complete data: it comes back `queued`.
spyglass.recycle owns moving images into the bin and purging them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import images, recycle_bin
from spyglass.errors import Conflict
from spyglass.images import queries as q
from spyglass.images import states
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.images.queries import ImageRecord
from spyglass.timeutil import isotime

# Statuses an image comes back to; anything else (data still arriving) comes back queued.
RESTORABLE = frozenset({states.QUEUED, states.ACTIVE, states.KILLED, states.DEACTIVATED})


def restore_image(db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.RESTORE_IMAGE, lock=True)
        if record.status != states.PENDING_DELETE:
            raise Conflict(f"Image {image_id} is not in the recycle bin (its status is {record.status}).")
        found = conn.execute(
            select(recycle_bin.c.previous_status).where(recycle_bin.c.image_id == image_id)
        ).scalar()
        target = found if found in RESTORABLE else states.QUEUED
        if not q.set_status(conn, image_id, states.PENDING_DELETE, target):
            raise Conflict(q.STATUS_RACE)
        conn.execute(delete(recycle_bin).where(recycle_bin.c.image_id == image_id))
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
    stmt = (
        select(images.c.id, images.c.name, images.c.owner, images.c.size, recycle_bin)
        .join(recycle_bin, recycle_bin.c.image_id == images.c.id)
        .order_by(recycle_bin.c.purge_after, images.c.id)
    )
    if not permits(ctx, Action.GET_ALL_RECYCLE_BIN, Target()):
        stmt = stmt.where(images.c.owner == (ctx.project_id or ""))
    with db.read() as conn:
        return [_entry(r) for r in conn.execute(stmt).mappings()]


def _entry(row: Any) -> dict[str, Any]:
    return {
        "image_id": row["id"],
        "name": row["name"],
        "owner": row["owner"],
        "size": row["size"],
        "previous_status": row["previous_status"],
        "deleted_at": isotime(row["deleted_at"]),
        "purge_after": isotime(row["purge_after"]),
        "deleted_by": {"user_id": row["deleted_by_user"], "project_id": row["deleted_by_project"]},
    }
