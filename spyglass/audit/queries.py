"""The audit package's SQL: the events table, the webhook outbox and what delivery reads of webhooks.

Services open the transaction and pass the Connection; these functions build and run the statements
and return typed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, update

from spyglass.db.tables import (
    image_events,
    image_members,
    images,
    notification_outbox,
    webhook_deliveries,
    webhooks,
)

# ---- events -----------------------------------------------------------------------------------------


def _insert_event(hooked: Any) -> Any:
    return insert(image_events).returning(image_events.c.id, exists().where(hooked).label("hooked"))


# Built once: a statement built per call costs more Python than the database takes to run it. An
# event concerns the owner and one member (two parameters), or the owner and every member.
_INSERT_EVENT_FOR_TWO = _insert_event(webhooks.c.project_id.in_([bindparam("a"), bindparam("b")]))
_INSERT_EVENT_FOR_MANY = _insert_event(webhooks.c.project_id.in_(bindparam("concerned", expanding=True)))


def insert_event(conn: Connection, values: dict[str, Any], concerned: Iterable[str]) -> tuple[int, bool]:
    """Append one event row: its id, and whether any of the concerned projects has a webhook (in
    the same statement, so that an event nobody listens to costs one round trip)."""
    projects = sorted(concerned)
    if 1 <= len(projects) <= 2:
        row = conn.execute(_INSERT_EVENT_FOR_TWO, {**values, "a": projects[0], "b": projects[-1]}).one()
    else:
        row = conn.execute(_INSERT_EVENT_FOR_MANY, {**values, "concerned": projects}).one()
    return int(row.id), bool(row.hooked)


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Append event rows in one statement; their ids, in the order of the rows."""
    inserted = insert(image_events).returning(image_events.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(inserted, rows).scalars()]


@dataclass(frozen=True)
class Membership:
    image_id: str
    owner: str | None
    member_id: str
    status: str


def members_of(conn: Connection, image_id: str) -> list[Membership]:
    """The image's member rows (whatever their status and the image's visibility)."""
    stmt = (
        select(image_members.c.image_id, images.c.owner, image_members.c.member_id, image_members.c.status)
        .join(images, images.c.id == image_members.c.image_id)
        .where(image_members.c.image_id == image_id)
    )
    return [Membership(*row) for row in conn.execute(stmt)]


def member_ids(conn: Connection, image_id: str) -> list[str]:
    stmt = select(image_members.c.member_id).where(image_members.c.image_id == image_id)
    return [str(m) for m in conn.execute(stmt).scalars()]


def memberships_elsewhere(conn: Connection, project_id: str) -> list[Membership]:
    """The project's member rows on images other projects own."""
    stmt = (
        select(image_members.c.image_id, images.c.owner, image_members.c.member_id, image_members.c.status)
        .join(images, images.c.id == image_members.c.image_id)
        .where(image_members.c.member_id == project_id, images.c.owner != project_id)
    )
    return [Membership(*row) for row in conn.execute(stmt)]


def owned_images(conn: Connection, project_id: str) -> list[tuple[str, str]]:
    """The id and visibility of each image the project owns."""
    stmt = select(images.c.id, images.c.visibility).where(images.c.owner == project_id)
    return [(str(i), str(v)) for i, v in conn.execute(stmt)]


# ---- the outbox ---------------------------------------------------------------------------------------


def webhook_ids(conn: Connection, projects: Iterable[str]) -> list[str]:
    """The webhooks these projects registered."""
    stmt = select(webhooks.c.id).where(webhooks.c.project_id.in_(list(projects)))
    return [str(i) for i in conn.execute(stmt).scalars()]


def webhooks_by_project(conn: Connection, projects: Iterable[str]) -> dict[str, list[str]]:
    """The webhooks these projects registered, by project."""
    stmt = select(webhooks.c.project_id, webhooks.c.id).where(webhooks.c.project_id.in_(list(projects)))
    found: dict[str, list[str]] = {}
    for project, hook in conn.execute(stmt):
        found.setdefault(str(project), []).append(str(hook))
    return found


def insert_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(webhook_deliveries), rows)


def delete_project_webhooks(conn: Connection, project_id: str) -> None:
    """The project's webhooks go with their deliveries (the foreign key cascades)."""
    conn.execute(delete(webhooks).where(webhooks.c.project_id == project_id))


def webhook_secrets(conn: Connection) -> list[tuple[str, str]]:
    """Every webhook's id and stored secret."""
    return [(str(i), str(s)) for i, s in conn.execute(select(webhooks.c.id, webhooks.c.secret))]


def replace_secret(conn: Connection, webhook_id: str, old: str, new: str) -> None:
    """Compare-and-set: nothing changes if the secret is no longer `old`."""
    conn.execute(
        update(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.secret == old).values(secret=new)
    )


# ---- deliveries -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: str
    event_id: int
    event_type: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class DueDelivery(Delivery):
    """A delivery with its webhook's URL and sealed secret."""

    url: str = ""
    secret: str = ""


def deliveries_of(conn: Connection, webhook_id: str) -> list[Delivery]:
    """The webhook's deliveries not yet made and its dead letters, oldest first."""
    d = webhook_deliveries.c
    stmt = select(webhook_deliveries).where(d.webhook_id == webhook_id).order_by(d.id)
    return [Delivery(**r) for r in conn.execute(stmt).mappings()]


def due_heads(conn: Connection, status: str, now: datetime) -> list[DueDelivery]:
    """The oldest delivery of `status` of every webhook, when its next attempt is due."""
    d = webhook_deliveries.c
    heads = select(func.min(d.id)).where(d.status == status).group_by(d.webhook_id)
    stmt = (
        select(webhook_deliveries, webhooks.c.url, webhooks.c.secret)
        .join(webhooks, webhooks.c.id == d.webhook_id)
        .where(d.id.in_(heads), d.next_attempt_at <= now)
        .order_by(d.id)
    )
    return [DueDelivery(**r) for r in conn.execute(stmt).mappings()]


def claim(conn: Connection, head: Delivery, status: str, until: datetime) -> bool:
    """Compare-and-set the next attempt time forward; whether this caller won the delivery."""
    d = webhook_deliveries.c
    claimed = conn.execute(
        update(webhook_deliveries)
        .where(d.id == head.id, d.next_attempt_at == head.next_attempt_at, d.status == status)
        .values(next_attempt_at=until)
    )
    return claimed.rowcount == 1


def update_delivery(conn: Connection, delivery_id: int, **values: Any) -> None:
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id).values(**values))


def delete_delivery(conn: Connection, delivery_id: int) -> None:
    conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id))


# ---- the message bus outbox ------------------------------------------------------------------------


def insert_notifications(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(notification_outbox), rows)


def member_times(conn: Connection, image_id: str, member_id: str) -> tuple[datetime, datetime] | None:
    """A membership's created_at and updated_at, if the row exists."""
    m = image_members.c
    found = conn.execute(
        select(m.created_at, m.updated_at).where(m.image_id == image_id, m.member_id == member_id)
    ).first()
    return None if found is None else (found[0], found[1])


@dataclass(frozen=True)
class Notification:
    id: int
    message_id: str
    event_type: str
    priority: str
    payload: str
    created_at: datetime
    attempts: int


def claim_notifications(conn: Connection, token: str, now: datetime, until: datetime, limit: int) -> None:
    """Claim up to `limit` of the oldest rows nobody holds (or whose hold ran out) for `token`."""
    n = notification_outbox.c
    free = (n.claimed_until.is_(None)) | (n.claimed_until < now)
    oldest = select(n.id).where(free).order_by(n.id).limit(limit).scalar_subquery()
    # The hold is compare-and-set: a row another node claimed in between no longer matches `free`.
    conn.execute(
        update(notification_outbox)
        .where(n.id.in_(oldest), free)
        .values(claimed_by=token, claimed_until=until)
    )


def claimed_notifications(conn: Connection, token: str) -> list[Notification]:
    n = notification_outbox.c
    rows = conn.execute(
        select(n.id, n.message_id, n.event_type, n.priority, n.payload, n.created_at, n.attempts)
        .where(n.claimed_by == token)
        .order_by(n.id)
    )
    return [Notification(*row) for row in rows]


def delete_notification(conn: Connection, notification_id: int, token: str) -> None:
    n = notification_outbox.c
    conn.execute(delete(notification_outbox).where(n.id == notification_id, n.claimed_by == token))


def release_notifications(
    conn: Connection, token: str, error: str | None, until: datetime | None, failed_id: int | None
) -> None:
    """Give back the rows `token` still holds, free again at `until` (None: now); the failed row
    counts an attempt and keeps its error."""
    n = notification_outbox.c
    conn.execute(
        update(notification_outbox).where(n.claimed_by == token).values(claimed_by=None, claimed_until=until)
    )
    if failed_id is not None:
        conn.execute(
            update(notification_outbox)
            .where(n.id == failed_id)
            .values(attempts=n.attempts + 1, last_error=error)
        )


def pending_notifications(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(notification_outbox)).scalar_one())
