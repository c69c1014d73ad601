"""The SQL of shares that end on a date (table image_member_expiries, beside image_members).

The two claims are what make the background task safe with several API nodes on one database:
`claim_expired` deletes the due member rows with DELETE ... RETURNING and `claim_warnings` marks
the rows to warn with UPDATE ... RETURNING, each in the caller's transaction. A row another node
claimed first is gone (or marked) when this node's statement reaches it, so it is never returned
twice: PostgreSQL re-checks the condition after waiting for the other transaction, and SQLite runs
one write transaction at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, tuple_, update

from spyglass.db.tables import image_member_expiries as expiries
from spyglass.db.tables import image_members, images
from spyglass.images import states

# Due rows handled per transaction, so one round never holds the write lock for long.
BATCH = 500


def set_expiry(conn: Connection, image_id: str, member_id: str, expires_at: datetime | None) -> None:
    """Give the member row an expiry (or none); a new date will be warned about again."""
    key = (expiries.c.image_id == image_id, expiries.c.member_id == member_id)
    conn.execute(delete(expiries).where(*key))
    if expires_at is not None:
        values = {"image_id": image_id, "member_id": member_id, "expires_at": expires_at}
        conn.execute(insert(expiries).values(**values))


def member_row(conn: Connection, image_id: str, member_id: str) -> dict[str, Any] | None:
    stmt = select(image_members).where(
        image_members.c.image_id == image_id, image_members.c.member_id == member_id
    )
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def expiry_of(conn: Connection, image_id: str, member_id: str) -> datetime | None:
    stmt = select(expiries.c.expires_at).where(
        expiries.c.image_id == image_id, expiries.c.member_id == member_id
    )
    found: datetime | None = conn.execute(stmt).scalar()
    return found


def expiries_on_image(conn: Connection, image_id: str) -> dict[str, datetime]:
    stmt = select(expiries.c.member_id, expiries.c.expires_at).where(expiries.c.image_id == image_id)
    return {row.member_id: row.expires_at for row in conn.execute(stmt)}


def expiries_of_member(conn: Connection, member_id: str, image_ids: Iterable[str]) -> dict[str, datetime]:
    stmt = select(expiries.c.image_id, expiries.c.expires_at).where(
        expiries.c.member_id == member_id, expiries.c.image_id.in_(list(image_ids))
    )
    return {row.image_id: row.expires_at for row in conn.execute(stmt)}


def claim_expired(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Delete up to BATCH member rows whose expiry is due; what this call deleted, with the owner."""
    due = dict(
        ((row.image_id, row.member_id), row.expires_at)
        for row in conn.execute(
            select(expiries.c.image_id, expiries.c.member_id, expiries.c.expires_at)
            .where(expiries.c.expires_at <= now)
            .order_by(expiries.c.expires_at)
            .limit(BATCH)
        )
    )
    if not due:
        return []
    key = tuple_(image_members.c.image_id, image_members.c.member_id)
    still_due = select(expiries.c.image_id, expiries.c.member_id).where(expiries.c.expires_at <= now)
    claimed = conn.execute(
        delete(image_members)
        .where(key.in_(list(due)), key.in_(still_due))
        .returning(image_members.c.image_id, image_members.c.member_id, image_members.c.status)
    ).all()
    owners = _owners(conn, {row.image_id for row in claimed})
    return [
        {
            "image_id": row.image_id,
            "member_id": row.member_id,
            "status": row.status,
            "owner": owners.get(row.image_id),
            "expires_at": due[(row.image_id, row.member_id)],
        }
        for row in claimed
    ]


def claim_warnings(conn: Connection, now: datetime, horizon: datetime) -> list[dict[str, Any]]:
    """Mark as warned the not yet warned rows expiring by `horizon` on images the member can reach."""
    reachable = select(images.c.id).where(
        images.c.visibility == "shared", images.c.status.not_in((states.DELETED, states.PENDING_DELETE))
    )
    claimed = conn.execute(
        update(expiries)
        .where(
            expiries.c.warned_at.is_(None),
            expiries.c.expires_at > now,
            expiries.c.expires_at <= horizon,
            expiries.c.image_id.in_(reachable),
        )
        .values(warned_at=now)
        .returning(expiries.c.image_id, expiries.c.member_id, expiries.c.expires_at)
    ).all()
    owners = _owners(conn, {row.image_id for row in claimed})
    return [{**row._asdict(), "owner": owners.get(row.image_id)} for row in claimed]


def _owners(conn: Connection, image_ids: set[str]) -> dict[str, str | None]:
    if not image_ids:
        return {}
    stmt = select(images.c.id, images.c.owner).where(images.c.id.in_(image_ids))
    return {row.id: row.owner for row in conn.execute(stmt)}
