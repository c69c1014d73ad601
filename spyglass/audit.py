"""The audit trail, read side: who reads which events of an image (GET /v2/images/{id}/events).

- The owner project (any role that reads) and admins read every event of the image, also after it
  was deleted for good: the owner is then the one recorded on its last event.
- Any other project reads the events of its own membership: the events naming it as member, and
  the image-wide events (deleted, restored, visibility changed, deactivated...) recorded while it
  was a member, from its `member.added` to its `member.removed`. This stays readable after the
  membership ended, when the image itself is 404 to that project: a consumer learns that it lost
  access, when, and why. It learns nothing about other members.
- A project with no membership events that cannot see the image gets 404, as for an image that
  does not exist; one that can see it (a public image) gets an empty list.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, and_, literal, or_, select, true

from spyglass import events
from spyglass.context import RequestContext
from spyglass.db import image_queries as q
from spyglass.db.engine import Database
from spyglass.db.tables import image_events
from spyglass.errors import Invalid, NotFound
from spyglass.images import is_uuid, target_of
from spyglass.policy import Action, Target, authorize, permits

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def list_events(
    db: Database, ctx: RequestContext, image_id: str, *, marker: int | None = None, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """The events the caller may read, oldest first, after the `marker` event id."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.")
    if not is_uuid(image_id):
        raise NotFound(f"No image found with ID {image_id}")
    with db.read() as conn:
        scope = _scope(conn, ctx, image_id)
        stmt = select(image_events).where(image_events.c.image_id == image_id, scope)
        if marker is not None:
            # As a 64-bit value: PostgreSQL's ids are 32-bit, and a larger marker must not overflow.
            stmt = stmt.where(image_events.c.id > literal(marker, BigInteger))
        rows = conn.execute(stmt.order_by(image_events.c.id).limit(limit)).mappings()
        return [events.document(r) for r in rows]


def _scope(conn: Connection, ctx: RequestContext, image_id: str) -> ColumnElement[bool]:
    """The condition on the image's events that the caller may read; NotFound when there are none."""
    record = q.fetch_image(conn, image_id, ctx.project_id)
    target = target_of(record) if record else Target(owner=_last_owner(conn, image_id))
    if permits(ctx, Action.GET_IMAGE_EVENTS, target):
        return true()
    me = ctx.project_id or ""
    authorize(ctx, Action.GET_MEMBERSHIP_EVENTS, replace(target, member_id=me), image_id=image_id)
    windows = _membership_windows(conn, image_id, me)
    if not windows and not (record and permits(ctx, Action.GET_IMAGE, target)):
        raise NotFound(f"No image found with ID {image_id}")
    image_wide = [
        and_(
            image_events.c.member_id.is_(None),
            image_events.c.id >= start,
            image_events.c.id <= end if end is not None else true(),
        )
        for start, end in windows
    ]
    return or_(image_events.c.member_id == me, *image_wide)


def _last_owner(conn: Connection, image_id: str) -> str | None:
    stmt = (
        select(image_events.c.owner)
        .where(image_events.c.image_id == image_id)
        .order_by(image_events.c.id.desc())
        .limit(1)
    )
    owner: str | None = conn.execute(stmt).scalar()
    return owner


def _membership_windows(conn: Connection, image_id: str, member: str) -> list[tuple[int, int | None]]:
    """(first, last) event ids of each period the project was a member; last None while it still is."""
    stmt = (
        select(image_events.c.id, image_events.c.event_type)
        .where(image_events.c.member_id == member, image_events.c.image_id == image_id)
        .order_by(image_events.c.id)
    )
    windows: list[tuple[int, int | None]] = []
    start: int | None = None
    for event_id, kind in conn.execute(stmt).all():
        if kind == events.MEMBER_ADDED and start is None:
            start = event_id
        elif kind == events.MEMBER_REMOVED and start is not None:
            windows.append((start, event_id))
            start = None
    if start is not None:
        windows.append((start, None))
    return windows
