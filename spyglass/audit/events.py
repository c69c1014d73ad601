"""The audit trail, write side: sharing and lifecycle events, recorded in the change's transaction.

The service function that makes a change calls `record` inside the same transaction
(spyglass.members, spyglass.images, spyglass.recycle, spyglass.copies, and `on_project_deleted`
for the identity service), so the trail never disagrees with the data. In that same transaction
the event is queued for the webhooks of the projects it concerns (spyglass.webhooks): the owner,
and the member named by the event or, for an image-wide event, every member of the image.

An event either names a member (`member.*`, and `image.copied` naming the copying project) or
concerns the whole image (`member_id` null). spyglass.audit is the read side.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from spyglass.audit import outbox
from spyglass.context import RequestContext
from spyglass.db.tables import image_events, image_members, images
from spyglass.timeutil import isotime, utcnow

MEMBER_ADDED = "member.added"
MEMBER_STATUS_CHANGED = "member.status_changed"
MEMBER_REMOVED = "member.removed"
VISIBILITY_CHANGED = "image.visibility_changed"
IMAGE_DEACTIVATED = "image.deactivated"
IMAGE_REACTIVATED = "image.reactivated"
IMAGE_DELETED = "image.deleted"
IMAGE_RESTORED = "image.restored"
IMAGE_PURGED = "image.purged"
IMAGE_COPIED = "image.copied"
IMAGE_CREATED_BY_COPY = "image.created_by_copy"
PROJECT_DELETED = "project.deleted"
# Deprecation with a successor (spyglass.images.deprecation).
IMAGE_DEPRECATED = "image.deprecated"
IMAGE_UNDEPRECATED = "image.undeprecated"
IMAGE_OBSOLETING = "image.obsoleting"

# Why a membership ended, in the `after` of member.removed when it was not the owner's call.
OWNER_PROJECT_DELETED = "owner project deleted"
MEMBER_PROJECT_DELETED = "member project deleted"


def record(
    conn: Connection,
    ctx: RequestContext | None,
    image_id: str,
    owner: str | None,
    event_type: str,
    *,
    member_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Append one event (ctx None: done by Spyglass itself, e.g. the purge) and queue its webhooks."""
    values = {
        "image_id": image_id,
        "owner": owner,
        "event_type": event_type,
        "member_id": member_id,
        "actor_user_id": ctx.user_id if ctx else None,
        "actor_project_id": ctx.project_id if ctx else None,
        "created_at": utcnow(),
        "before": before,
        "after": after,
    }
    inserted = insert(image_events).values(**values).returning(image_events.c.id)
    event_id: int = conn.execute(inserted).scalar_one()
    event = document({**values, "id": event_id})
    outbox.enqueue(conn, event, _concerned(conn, image_id, owner, member_id))
    return event_id


def document(row: Any) -> dict[str, Any]:
    """An event as the API and webhook deliveries show it."""
    return {
        "id": row["id"],
        "type": row["event_type"],
        "image_id": row["image_id"],
        "owner": row["owner"],
        "member_id": row["member_id"],
        "actor": {"user_id": row["actor_user_id"], "project_id": row["actor_project_id"]},
        "created_at": isotime(row["created_at"]),
        "before": row["before"],
        "after": row["after"],
    }


def _concerned(conn: Connection, image_id: str, owner: str | None, member_id: str | None) -> set[str]:
    projects = {owner} if owner else set()
    if member_id is not None:
        projects.add(member_id)
        return projects
    members = select(image_members.c.member_id).where(image_members.c.image_id == image_id)
    projects.update(conn.execute(members).scalars())
    return projects


# ---- project lifecycle ---------------------------------------------------------------------------


def on_project_deleted(conn: Connection, project_id: str) -> None:
    """Record what deleting a project ends, before spyglass.members removes the rows.

    The identity service calls its hooks without the caller, so these events have no actor.
    """
    theirs = (
        select(image_members.c.image_id, image_members.c.status, images.c.owner)
        .join(images, images.c.id == image_members.c.image_id)
        .where(image_members.c.member_id == project_id, images.c.owner != project_id)
    )
    for row in conn.execute(theirs).all():
        _membership_ended(conn, row.image_id, row.owner, project_id, row.status, MEMBER_PROJECT_DELETED)
    owned = select(images.c.id, images.c.visibility).where(images.c.owner == project_id)
    for image in conn.execute(owned).all():
        _owner_deleted(conn, image.id, project_id, image.visibility)


def _owner_deleted(conn: Connection, image_id: str, owner: str, visibility: str) -> None:
    # The image-wide event first: members still see it, inside their membership.
    record(
        conn,
        None,
        image_id,
        owner,
        PROJECT_DELETED,
        before={"visibility": visibility},
        after={"visibility": "private", "deleted_project": owner},
    )
    members = select(image_members.c.member_id, image_members.c.status).where(
        image_members.c.image_id == image_id
    )
    for member in conn.execute(members).all():
        _membership_ended(conn, image_id, owner, member.member_id, member.status, OWNER_PROJECT_DELETED)


def _membership_ended(
    conn: Connection, image_id: str, owner: str | None, member_id: str, status: str, reason: str
) -> None:
    record(
        conn,
        None,
        image_id,
        owner,
        MEMBER_REMOVED,
        member_id=member_id,
        before={"status": status},
        after={"reason": reason},
    )
