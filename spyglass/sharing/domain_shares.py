"""Sharing an image with a whole domain: every project of it, present and future, is offered the image.

`POST /v2/images/{id}/members {"member": "domain:<domain id>"}` adds the domain entry, an
image_members row with member_id `domain:<id>` and status `pending` (the offer itself: each project
answers on its own row, so no one sets the entry's status), and one member row per project of the
domain, with the status spyglass.sharing.trust gives a direct share, marked as made by the entry.
Projects see the image through their own rows, so the visibility rule is unchanged; a project
created later in the domain gets its row when created (`on_project_created`).

- A project's direct row wins: the domain share leaves it alone, and removing the entry keeps it.
- Adding directly a project whose row the domain share made makes that row direct (status kept).
- Removing the entry removes the rows it made (one member.removed each, after the impact check).
- Removing one such row leaves that project out of the domain share until it is added again.
- The member quota counts the domain entry once, not each of its projects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.errors import Conflict, Invalid, TooLarge
from spyglass.images import impact as safeguards
from spyglass.images.impact import Safeguards
from spyglass.images.queries import ImageRecord
from spyglass.sharing import domain_shares_queries as q
from spyglass.sharing import queries as member_rows
from spyglass.sharing.queries import MemberRow
from spyglass.sharing.trust import initial_status
from spyglass.timeutil import utcnow

DOMAIN_PREFIX = "domain:"


def domain_of(member_id: str) -> str | None:
    """The domain id of a domain entry's member_id, None for a project."""
    return member_id[len(DOMAIN_PREFIX) :] if member_id.startswith(DOMAIN_PREFIX) else None


def _check_quota(conn: Connection, image_id: str, quota: int) -> None:
    count = q.entry_count(conn, image_id)
    if count >= quota:
        raise TooLarge(f"The image already has {count} members, the most allowed ({quota}).")


def _check_domain(conn: Connection, domain_id: str) -> None:
    enabled = q.lock_domain(conn, domain_id)
    if enabled is None:
        raise Invalid(
            f"Domain {domain_id} does not exist; an image can only be shared with an existing domain."
        )
    if not enabled:
        raise Invalid(f"Domain {domain_id} is disabled; an image cannot be shared with it.")


def add(
    conn: Connection, ctx: RequestContext, record: ImageRecord, member_id: str, *, quota: int
) -> MemberRow:
    """Add the domain entry `member_id` and a row for each project of the domain (authorized)."""
    domain_id = domain_of(member_id) or ""
    # Checked even with validate_member_ids off: the domain's projects are read from the directory.
    _check_domain(conn, domain_id)
    if member_rows.member_row(conn, record.id, member_id) is not None:
        raise Conflict(f"Member {member_id} is duplicated for image {record.id}")
    _check_quota(conn, record.id, quota)
    now = utcnow()
    row = MemberRow(image_id=record.id, member_id=member_id, status="pending", created_at=now, updated_at=now)
    member_rows.insert_member(conn, row)
    safeguards.member_added(conn, ctx, record, member_id)
    _offer(conn, ctx, record.id, record.owner, domain_id, q.domain_projects(conn, domain_id))
    return row


def _offer(
    conn: Connection,
    ctx: RequestContext | None,
    image_id: str,
    owner: str | None,
    domain_id: str,
    project_ids: list[str],
) -> None:
    """Rows for those of the projects that have none yet (a direct row wins), each with its event."""
    taken = q.members_among(conn, image_id, project_ids)
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "image_id": image_id,
            "member_id": project_id,
            "status": initial_status(conn, owner or "", project_id),
            "created_at": now,
            "updated_at": now,
        }
        for project_id in project_ids
        if project_id not in taken and project_id != owner
    ]
    q.insert_rows(conn, domain_id, rows)
    via = {"via": DOMAIN_PREFIX + domain_id}
    for row in rows:
        after = {"status": row["status"], **via}
        events.record(
            conn, ctx, image_id, owner, events.MEMBER_ADDED, member_id=row["member_id"], after=after
        )


def make_direct(
    conn: Connection, ctx: RequestContext, record: ImageRecord, member_id: str, *, quota: int
) -> MemberRow | None:
    """A direct add of a project whose row a domain share made: the row becomes direct, its status
    kept (None when the project has no such row: the add proceeds as in Glance)."""
    via = q.origin(conn, record.id, member_id)
    if via is None:
        return None
    _check_quota(conn, record.id, quota)
    q.unmark(conn, record.id, member_id)
    row = member_rows.member_row(conn, record.id, member_id)
    assert row is not None  # its origin mark exists, and goes with the row
    before, after = {"via": DOMAIN_PREFIX + via}, {"status": row["status"]}
    events.record(
        conn,
        ctx,
        record.id,
        record.owner,
        events.MEMBER_ADDED,
        member_id=member_id,
        before=before,
        after=after,
    )
    return row


def refuse_status(member_id: str) -> None:
    """The domain entry has no status of its own to set (an admin could otherwise set one)."""
    if domain_of(member_id) is not None:
        raise Invalid(
            f"Member {member_id} is a domain share: each project of the domain accepts or rejects "
            "the image on its own member row."
        )


def member_removing(
    conn: Connection, ctx: RequestContext, record: ImageRecord, member_id: str, guard: Safeguards
) -> None:
    """Removing a domain entry removes the rows it made (a project row's mark goes with the row)."""
    domain_id = domain_of(member_id)
    if domain_id is None:
        return
    made = q.rows_made_by(conn, record.id, domain_id)
    for row in made:
        safeguards.check_impact(conn, record, guard, f"remove member {member_id} from", only=row["member_id"])
    for row in made:
        before, after = {"status": row["status"]}, {"via": member_id}
        events.record(
            conn,
            ctx,
            record.id,
            record.owner,
            events.MEMBER_REMOVED,
            member_id=row["member_id"],
            before=before,
            after=after,
        )
    q.delete_rows_made_by(conn, record.id, domain_id)


# ---- project lifecycle -------------------------------------------------------------------------------


def on_project_created(conn: Connection, project_id: str) -> None:
    """A new project is offered every image shared with its domain (no actor: the identity side)."""
    domain_id = q.project_domain(conn, project_id)
    if domain_id is None:
        return
    q.lock_domain(conn, domain_id)
    for image_id, owner in q.shares_with(conn, DOMAIN_PREFIX + domain_id):
        _offer(conn, None, image_id, owner, domain_id, [project_id])
