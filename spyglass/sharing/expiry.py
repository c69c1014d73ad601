"""Shares that end on a date: the owner's expiry on a member row, the warning ahead, the end.

The owner (or an admin) gives a member row an expiry when adding the member (`expires_at` in the
body of POST /v2/images/{id}/members) or later (PUT .../members/{member}/expiry). A member row shows
`expires_at` only when it has one, so Glance's answers are unchanged. `member_expiry_warning_days`
before the date the member is warned once (event member.expiring, its inbox entry says
`expiring`); at the date the membership ends as if the owner had removed it (event
member.expired). The server's background task calls `run_due`; the claims in expiry_queries
make that safe on several nodes sharing one database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Invalid, NotFound
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action
from spyglass.sharing import expiry_queries as q
from spyglass.sharing.queries import MemberRow
from spyglass.timeutil import isotime, parse_isotime, utcnow

FIELD = "expires_at"


def parse_expiry(value: Any, now: datetime | None = None) -> datetime | None:
    """A future time in ISO 8601 (naive UTC), or None for no expiry; Invalid otherwise."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError(value)
        when = parse_isotime(value)
    except ValueError as exc:
        raise Invalid(f"{FIELD} must be a time in ISO 8601, such as 2027-01-31T00:00:00Z.") from exc
    if when <= (now or utcnow()):
        raise Invalid(f"{FIELD} must be in the future.")
    return when.replace(microsecond=0)


def on_member_added(conn: Connection, row: MemberRow, body: Any) -> None:
    """The add_member body may carry `expires_at`: store it with the new row."""
    value = body.get(FIELD) if isinstance(body, dict) else None
    when = parse_expiry(value)
    if when is not None:
        q.set_expiry(conn, row["image_id"], row["member_id"], when)
        row["expires_at"] = when


def with_expiries(conn: Connection, image_id: str, rows: list[MemberRow]) -> list[MemberRow]:
    """The member rows of one image, each with its `expires_at` when it has one."""
    found = q.expiries_on_image(conn, image_id)
    return [{**r, "expires_at": found[r["member_id"]]} if r["member_id"] in found else r for r in rows]


def with_expiry(conn: Connection, row: MemberRow) -> MemberRow:
    when = q.expiry_of(conn, row["image_id"], row["member_id"])
    return {**row, "expires_at": when} if when is not None else row


def annotate_invitations(
    conn: Connection,
    member_id: str,
    entries: list[dict[str, Any]],
    warning_days: int,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Inbox entries with `expires_at` (null when none) and `expiring` (within the warning days)."""
    found = q.expiries_of_member(conn, member_id, [e["image_id"] for e in entries])
    horizon = (now or utcnow()) + timedelta(days=warning_days)
    for entry in entries:
        when = found.get(entry["image_id"])
        entry[FIELD] = isotime(when)
        entry["expiring"] = when is not None and when <= horizon
    return entries


def set_member_expiry(
    db: Database, ctx: RequestContext, image_id: str, member_id: str, body: Any
) -> dict[str, Any]:
    """PUT /v2/images/{id}/members/{member}/expiry: the owner or an admin sets or clears the date."""
    if not isinstance(body, dict) or FIELD not in body:
        raise Invalid(f'The body must be {{"{FIELD}": "<ISO 8601 time>" | null}}.')
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.SET_MEMBER_EXPIRY, lock=True)
        # Project ids never hold control characters, and PostgreSQL cannot even compare a NUL.
        clean = not any(ord(c) < 32 or ord(c) == 127 for c in member_id)
        row = q.member_row(conn, image_id, member_id) if clean else None
        if row is None:
            raise NotFound(f"Member {member_id} not found for image {image_id}.")
        when = parse_expiry(body[FIELD])
        before = q.expiry_of(conn, image_id, member_id)
        q.set_expiry(conn, image_id, member_id, when)
        if before != when:
            events.record(
                conn,
                ctx,
                image_id,
                record.owner,
                events.MEMBER_EXPIRY_CHANGED,
                member_id=member_id,
                before={FIELD: isotime(before)},
                after={FIELD: isotime(when)},
            )
        return {**row, "expires_at": when} if when is not None else row


# ---- the background task ------------------------------------------------------------------------


def run_due(db: Database, warning_days: int, now: datetime | None = None) -> tuple[int, int]:
    """Warn the members whose share expires soon and end the expired shares: (warned, ended)."""
    now = now or utcnow()
    return warn_expiring(db, warning_days, now), end_expired(db, now)


def warn_expiring(db: Database, warning_days: int, now: datetime) -> int:
    with db.write() as conn:
        claimed = q.claim_warnings(conn, now, now + timedelta(days=warning_days))
        for row in claimed:
            after = {FIELD: isotime(row["expires_at"])}
            events.record(
                conn,
                None,
                row["image_id"],
                row["owner"],
                events.MEMBER_EXPIRING,
                member_id=row["member_id"],
                after=after,
            )
    return len(claimed)


def end_expired(db: Database, now: datetime) -> int:
    ended = 0
    while True:
        with db.write() as conn:
            claimed = q.claim_expired(conn, now)
            for row in claimed:
                events.record(
                    conn,
                    None,
                    row["image_id"],
                    row["owner"],
                    events.MEMBER_EXPIRED,
                    member_id=row["member_id"],
                    before={"status": row["status"], FIELD: isotime(row["expires_at"])},
                    after={"reason": "expired"},
                )
        ended += len(claimed)
        if len(claimed) < q.BATCH:
            return ended
