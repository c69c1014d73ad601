"""Queries on an image's audit trail, the `image_events` table, for its read side
(spyglass.images.history decides who reads which events; spyglass.audit.events writes them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, Connection, RowMapping, and_, literal, or_, select, true

from spyglass.db.tables import image_events


class Span(NamedTuple):
    """The events after id `after` up to `last` (None: the newest), written at or after `since`."""

    after: int
    last: int | None
    since: datetime | None = None


@dataclass(frozen=True)
class Scope:
    """The events of an image one caller reads: those naming it as member, the image-wide ones of
    its membership `windows` ((first, last) event ids; last None: still a member), and every event
    of the `spans` it may read whole."""

    member_id: str
    windows: Sequence[tuple[int, int | None]]
    spans: Sequence[Span]


class Event(NamedTuple):
    id: int
    event_type: str
    owner: str | None
    after: dict[str, Any] | None


def events_in_scope(
    conn: Connection, image_id: str, scope: Scope, marker: int | None, limit: int
) -> Sequence[RowMapping]:
    """The image's events in `scope` after the `marker` event id, oldest first (rows for
    spyglass.audit.events.document)."""
    stmt = select(image_events).where(image_events.c.image_id == image_id, _condition(scope))
    if marker is not None:
        # As a 64-bit value: PostgreSQL's ids are 32-bit, and a larger marker must not overflow.
        stmt = stmt.where(image_events.c.id > literal(marker, BigInteger))
    return conn.execute(stmt.order_by(image_events.c.id).limit(limit)).mappings().all()


def _condition(scope: Scope) -> ColumnElement[bool]:
    image_wide = [
        and_(
            image_events.c.member_id.is_(None),
            image_events.c.id >= start,
            image_events.c.id <= end if end is not None else true(),
        )
        for start, end in scope.windows
    ]
    spans = [
        and_(
            image_events.c.id > span.after,
            image_events.c.id <= span.last if span.last is not None else true(),
            image_events.c.created_at >= span.since if span.since is not None else true(),
        )
        for span in scope.spans
    ]
    return or_(image_events.c.member_id == scope.member_id, *image_wide, *spans)


def events_of_types(conn: Connection, image_id: str, types: Sequence[str]) -> list[Event]:
    """The image's events of these types, oldest first."""
    stmt = (
        select(image_events.c.id, image_events.c.event_type, image_events.c.owner, image_events.c.after)
        .where(image_events.c.image_id == image_id, image_events.c.event_type.in_(types))
        .order_by(image_events.c.id)
    )
    return [Event(*row) for row in conn.execute(stmt).all()]


def last_owner(conn: Connection, image_id: str) -> str | None:
    """The owner recorded on the image's newest event."""
    stmt = (
        select(image_events.c.owner)
        .where(image_events.c.image_id == image_id)
        .order_by(image_events.c.id.desc())
        .limit(1)
    )
    owner: str | None = conn.execute(stmt).scalar()
    return owner


def has_events_after(conn: Connection, image_id: str, after: int) -> bool:
    stmt = select(image_events.c.id).where(image_events.c.image_id == image_id, image_events.c.id > after)
    return conn.execute(stmt.limit(1)).first() is not None


def member_events(conn: Connection, image_id: str, member_id: str) -> list[tuple[int, str]]:
    """(id, type) of the image's events naming this member, oldest first."""
    stmt = (
        select(image_events.c.id, image_events.c.event_type)
        .where(image_events.c.member_id == member_id, image_events.c.image_id == image_id)
        .order_by(image_events.c.id)
    )
    return [(event_id, kind) for event_id, kind in conn.execute(stmt).all()]
