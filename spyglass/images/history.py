"""The audit trail, read side: who reads which events of an image (GET /v2/images/{id}/events).

- The owner project (any role that reads) and admins read every event of the image, also after it
  was deleted for good: the owner is then the one recorded on its last event. Events belong to the
  image they were written for: an older release could give a deleted image's id to a new image,
  and its holder reads none of the earlier image's events (`Life`).
- Any other project reads the events of its own membership: the events naming it as member, and
  the image-wide events (deleted, restored, visibility changed, deactivated...) recorded while it
  was a member, from its `member.added` to its `member.removed`. This stays readable after the
  membership ended, when the image itself is 404 to that project: a consumer learns that it lost
  access, when, and why. It learns nothing about other members.
- A project with no membership events that cannot see the image gets 404, as for an image that
  does not exist; one that can see it (a public image) gets an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Invalid, NotFound
from spyglass.images import event_queries as eq
from spyglass.images import queries as q
from spyglass.images import states
from spyglass.images.catalog import is_uuid, target_of
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.images.queries import ImageRecord

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
        rows = eq.events_in_scope(conn, image_id, scope, marker, limit)
        return [events.document(r) for r in rows]


def _scope(conn: Connection, ctx: RequestContext, image_id: str) -> eq.Scope:
    """The image's events that the caller may read; NotFound when there are none."""
    record = q.fetch_image(conn, image_id, ctx.project_id)
    lives = _lives(conn, image_id, record)
    readable = [life.span() for life in lives if permits(ctx, Action.GET_IMAGE_EVENTS, life.target)]
    me = ctx.project_id or ""
    target = lives[-1].target
    authorize(ctx, Action.GET_MEMBERSHIP_EVENTS, replace(target, member_id=me), image_id=image_id)
    windows = _membership_windows(conn, image_id, me, lives)
    if not readable and not windows and not (record and permits(ctx, Action.GET_IMAGE, target)):
        raise NotFound(f"No image found with ID {image_id}")
    return eq.Scope(member_id=me, windows=windows, spans=readable)


@dataclass(frozen=True)
class Life:
    """The events of one image that held this id: after `after` up to `last` (None: the newest).

    Ids are not reused (spyglass.images), but a database upgraded from a release that reused them
    may hold the trails of several images under one id; each stays with its own image's owner.
    """

    after: int
    last: int | None
    target: Target
    # The current image's creation: events older than it were written for someone else's image.
    since: datetime | None = None

    def span(self) -> eq.Span:
        """Its events, all of them."""
        return eq.Span(self.after, self.last, self.since)

    def ends_before(self, event_id: int) -> bool:
        return self.last is not None and self.last < event_id


def _lives(conn: Connection, image_id: str, record: ImageRecord | None) -> list[Life]:
    """The images that held this id, oldest first; the last one is the current image, if any."""
    lives: list[Life] = []
    after = 0
    for end, owner in _ends(conn, image_id):
        lives.append(Life(after, end, Target(owner=owner)))
        after = end
    if record is not None:
        lives.append(Life(after, None, target_of(record), record.created_at))
    elif not lives or eq.has_events_after(conn, image_id, after):
        lives.append(Life(after, None, Target(owner=eq.last_owner(conn, image_id))))
    return lives


def _ends(conn: Connection, image_id: str) -> list[tuple[int, str | None]]:
    """(event id, owner) of each event that removed an image for good, oldest first."""
    removals = eq.events_of_types(conn, image_id, (events.IMAGE_DELETED, events.IMAGE_PURGED))
    return [
        (event.id, event.owner)
        for event in removals
        if event.event_type == events.IMAGE_PURGED or (event.after or {}).get("status") == states.DELETED
    ]


def _membership_windows(
    conn: Connection, image_id: str, member: str, lives: list[Life]
) -> list[tuple[int, int | None]]:
    """(first, last) event ids of each period the project was a member; last None while it still is.

    A membership ends at the latest with the image it was of (no later image's events)."""
    windows: list[tuple[int, int | None]] = []
    start: int | None = None
    for event_id, kind in eq.member_events(conn, image_id, member):
        if kind == events.MEMBER_ADDED and start is None:
            start = event_id
        elif kind in events.MEMBERSHIP_ENDED and start is not None:
            windows.append((start, event_id))
            start = None
    if start is not None:
        windows.append((start, None))
    return [_within_life(window, lives) for window in windows]


def _within_life(window: tuple[int, int | None], lives: list[Life]) -> tuple[int, int | None]:
    start, end = window
    life = next(life for life in lives if not life.ends_before(start))
    if life.last is not None and (end is None or end > life.last):
        return start, life.last
    return start, end
