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

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import notifications, outbox, queries
from spyglass.context import RequestContext
from spyglass.timeutil import isotime, utcnow

MEMBER_ADDED = "member.added"
MEMBER_STATUS_CHANGED = "member.status_changed"
MEMBER_REMOVED = "member.removed"
# The member project ended its own membership (spyglass.sharing.leaving).
MEMBER_LEFT = "member.left"
# The events that end a membership (the read side closes a member's window of events there).
MEMBERSHIP_ENDED = frozenset({MEMBER_REMOVED, MEMBER_LEFT})
VISIBILITY_CHANGED = "image.visibility_changed"
IMAGE_DEACTIVATED = "image.deactivated"
IMAGE_REACTIVATED = "image.reactivated"
IMAGE_DELETED = "image.deleted"
IMAGE_RESTORED = "image.restored"
IMAGE_PURGED = "image.purged"
IMAGE_COPIED = "image.copied"
IMAGE_CREATED_BY_COPY = "image.created_by_copy"
PROJECT_DELETED = "project.deleted"
# Shares that end on a date (spyglass.sharing.expiry): the warning ahead, and the end itself.
MEMBER_EXPIRING = "member.expiring"
MEMBER_EXPIRED = "member.expired"
MEMBER_EXPIRY_CHANGED = "member.expiry_changed"
# Deprecation with a successor (spyglass.images.deprecation).
IMAGE_DEPRECATED = "image.deprecated"
IMAGE_UNDEPRECATED = "image.undeprecated"
IMAGE_OBSOLETING = "image.obsoleting"

# Why a membership ended, in the `after` of member.removed when it was not the owner's call.
OWNER_PROJECT_DELETED = "owner project deleted"
MEMBER_PROJECT_DELETED = "member project deleted"
# Why a new member starts accepted, in the `after` of member.added (spyglass.sharing.trust).
TRUSTED_OWNER = "trusted owner"


# The member an event names (None: the whole image), and the state before and after.
MemberChange = tuple[str | None, dict[str, Any] | None, dict[str, Any] | None]


def _row(
    ctx: RequestContext | None,
    image_id: str,
    owner: str | None,
    event_type: str,
    change: MemberChange,
    now: datetime,
) -> dict[str, Any]:
    member_id, before, after = change
    return {
        "image_id": image_id,
        "owner": owner,
        "event_type": event_type,
        "member_id": member_id,
        "actor_user_id": ctx.user_id if ctx else None,
        "actor_project_id": ctx.project_id if ctx else None,
        "created_at": now,
        "before": before,
        "after": after,
    }


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
    member_times: tuple[datetime, datetime] | None = None,
) -> int:
    """Append one event (ctx None: done by Spyglass itself, e.g. the purge) and queue its webhooks.

    `member_times`: the membership's created_at and updated_at, for an event recorded once its row
    is gone."""
    values = _row(ctx, image_id, owner, event_type, (member_id, before, after), utcnow())
    concerned = _concerned(conn, image_id, owner, member_id)
    event_id, hooked = queries.insert_event(conn, values, concerned)
    if hooked or notifications.enabled(conn):
        event = document({**values, "id": event_id})
        if hooked:
            outbox.enqueue(conn, event, concerned)
        _announce(conn, [event], member_times)
    return event_id


def record_member_events(
    conn: Connection,
    ctx: RequestContext | None,
    image_id: str,
    owner: str | None,
    event_type: str,
    changes: Sequence[MemberChange],
) -> None:
    """`record` for many members of one image at once (member id, before, after each), in order:
    one statement for the events and one for their deliveries (spyglass.sharing.bulk)."""
    if not changes:
        return
    now = utcnow()
    rows = [_row(ctx, image_id, owner, event_type, change, now) for change in changes]
    ids = queries.insert_events(conn, rows)
    owners = {owner} if owner else set()
    members = [member_id for member_id, _before, _after in changes]
    documents = [document({**row, "id": i}) for row, i in zip(rows, ids, strict=True)]
    concerned = [owners | ({m} if m else set()) for m in members]
    outbox.enqueue_many(conn, list(zip(documents, concerned, strict=True)))
    _announce(conn, documents)


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


# The events that are also Glance's image.member.* notifications.
GLANCE_MEMBER_NOTIFICATIONS = {
    MEMBER_ADDED: "image.member.create",
    MEMBER_STATUS_CHANGED: "image.member.update",
    MEMBER_REMOVED: "image.member.delete",
    MEMBER_LEFT: "image.member.delete",
    MEMBER_EXPIRED: "image.member.delete",
}


def _announce(
    conn: Connection, documents: list[dict[str, Any]], member_times: tuple[datetime, datetime] | None = None
) -> None:
    """The events on the message bus: each as `spyglass.<type>`, and a membership change also as
    Glance's image.member.* notification."""
    if not notifications.enabled(conn):
        return
    notes: list[tuple[str, dict[str, Any]]] = []
    for event in documents:
        glance_type = GLANCE_MEMBER_NOTIFICATIONS.get(event["type"])
        if glance_type is not None and event["member_id"] is not None:
            notes.append((glance_type, _member_payload(conn, event, member_times)))
        notes.append(("spyglass." + event["type"], event))
    notifications.emit_many(conn, notes)


def _member_payload(
    conn: Connection, event: dict[str, Any], member_times: tuple[datetime, datetime] | None
) -> dict[str, Any]:
    """Glance's format_image_member_notification, from the event and the membership row (read here
    unless the caller, which removed the row already, passes its times). As in Glance, a membership
    that ends reports its row's last update, and its end as deleted_at."""
    times = member_times or queries.member_times(conn, event["image_id"], event["member_id"])
    created_at, updated_at = (isotime(times[0]), isotime(times[1])) if times else (None, None)
    ended = event["type"] in GLANCE_MEMBER_ENDED
    state = (event["before"] if ended else event["after"]) or {}
    if event["type"] != MEMBER_ADDED and not ended:
        updated_at = event["created_at"]  # the change's time
    return {
        "image_id": event["image_id"],
        "member_id": event["member_id"],
        "status": state.get("status"),
        "created_at": created_at,
        "updated_at": updated_at,
        "deleted": ended,
        "deleted_at": event["created_at"] if ended else None,
    }


GLANCE_MEMBER_ENDED = frozenset({MEMBER_REMOVED, MEMBER_LEFT, MEMBER_EXPIRED})


def _concerned(conn: Connection, image_id: str, owner: str | None, member_id: str | None) -> set[str]:
    projects = {owner} if owner else set()
    if member_id is not None:
        projects.add(member_id)
        return projects
    projects.update(queries.member_ids(conn, image_id))
    return projects


# ---- project lifecycle ---------------------------------------------------------------------------


def on_project_deleted(conn: Connection, project_id: str) -> None:
    """Record what deleting a project ends, before spyglass.members removes the rows.

    The identity service calls its hooks without the caller, so these events have no actor.
    """
    for theirs in queries.memberships_elsewhere(conn, project_id):
        _membership_ended(conn, theirs, MEMBER_PROJECT_DELETED)
    for image_id, visibility in queries.owned_images(conn, project_id):
        _owner_deleted(conn, image_id, project_id, visibility)


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
    for membership in queries.members_of(conn, image_id):
        _membership_ended(conn, membership, OWNER_PROJECT_DELETED)


def _membership_ended(conn: Connection, membership: queries.Membership, reason: str) -> None:
    record(
        conn,
        None,
        membership.image_id,
        membership.owner,
        MEMBER_REMOVED,
        member_id=membership.member_id,
        before={"status": membership.status},
        after={"reason": reason},
    )
