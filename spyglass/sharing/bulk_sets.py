"""Many members of one image at once, with the answers their single calls would give.

spyglass.sharing.bulk hands over all the members of one image. What each single call would read
one row at a time (the image, the member rows, the projects, trust rules, the quota count) is read
once; the new rows, the removed rows, their events and webhook deliveries are written a statement
at a time for the whole set. Each member is still judged in order with exactly the single call's
rules and messages (spyglass.sharing.members), the quota counting the members added before it.

A member that takes another path in its single call (a domain share, a row a domain share made,
an image whose owner protects its consumers) is left to that single call: `SINGLE` in the outcome,
which the caller then runs in order, after what came before it has been written.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.errors import Forbidden, Invalid, SpyglassError
from spyglass.identity.queries import projects_enabled
from spyglass.images import impact
from spyglass.images.catalog import load_authorized, target_of
from spyglass.images.impact import Safeguards
from spyglass.images.policy import Action, authorize, permits
from spyglass.images.queries import ImageRecord
from spyglass.sharing import domain_shares, expiry, members, queries, trust_queries
from spyglass.sharing import domain_shares_queries as domain_queries
from spyglass.sharing.queries import MemberRow
from spyglass.timeutil import utcnow

# The outcome of a member left to its single call.
SINGLE = "single"
Outcome = SpyglassError | str | None
Single = Callable[[str], Outcome]


def add(
    conn: Connection,
    ctx: RequestContext,
    image_id: str,
    member_ids: list[str],
    single: Single,
    *,
    quota: int,
    validate: bool,
    expires_at: str | None,
) -> list[Outcome]:
    """Add the members to the image; one outcome per member (None: added)."""
    record = load_authorized(conn, ctx, image_id, Action.ADD_MEMBER, lock=True)
    if record.visibility != "shared":
        raise Forbidden(f"Not allowed to create members for image {image_id}.")
    adding = _Adding(conn, ctx, record, member_ids, quota=quota, validate=validate, expires_at=expires_at)
    outcomes = []
    for member_id in member_ids:
        outcome = adding.judge(member_id)
        if outcome == SINGLE:
            adding.flush()
            outcome = single(member_id)
            adding.recount()
        outcomes.append(outcome)
    adding.flush()
    return outcomes


class _Adding:
    def __init__(
        self,
        conn: Connection,
        ctx: RequestContext,
        record: ImageRecord,
        member_ids: list[str],
        *,
        quota: int,
        validate: bool,
        expires_at: str | None,
    ) -> None:
        self.conn, self.ctx, self.record, self.member_ids = conn, ctx, record, member_ids
        self.quota, self.validate, self.expires_at = quota, validate, expires_at
        self.existing = set(queries.members_among(conn, record.id, member_ids))
        self.made_by_domain = domain_queries.origins_among(conn, record.id, member_ids)
        self.enabled = projects_enabled(conn, member_ids) if validate else {}
        owner = record.owner
        self.trusting = trust_queries.trusting(conn, member_ids, owner) if owner else set()
        self.count = domain_queries.entry_count(conn, record.id)
        self.pending: list[MemberRow] = []

    def judge(self, member_id: str) -> Outcome:
        """The single call's checks, in its order; a new row waits in `pending`."""
        if members.has_control(member_id):
            return Invalid(members.CONTROL_REFUSAL)
        if domain_shares.domain_of(member_id) is not None or member_id in self.made_by_domain:
            return SINGLE
        if member_id in self.existing:
            return members.duplicated(self.record.id, member_id)
        if self.validate:
            refused = members.project_refusal(member_id, self.enabled.get(member_id))
            if refused is not None:
                return refused
        if self.count >= self.quota:
            return members.over_quota(self.count, self.quota)
        now = utcnow()
        trusted = member_id in self.trusting and member_id != self.record.owner
        status = "accepted" if trusted else "pending"
        self.pending.append(
            MemberRow(
                image_id=self.record.id, member_id=member_id, status=status, created_at=now, updated_at=now
            )
        )
        self.existing.add(member_id)
        self.count += 1
        return None

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        queries.insert_members(self.conn, rows)
        changes = [(row["member_id"], None, impact.added_state(row["status"])) for row in rows]
        events.record_member_events(
            self.conn, self.ctx, self.record.id, self.record.owner, events.MEMBER_ADDED, changes
        )
        for row in rows:
            expiry.on_member_added(self.conn, row, {expiry.FIELD: self.expires_at})

    def recount(self) -> None:
        """Read again what a single call may have changed."""
        self.existing = set(queries.members_among(self.conn, self.record.id, self.member_ids))
        self.made_by_domain = domain_queries.origins_among(self.conn, self.record.id, self.member_ids)
        self.count = domain_queries.entry_count(self.conn, self.record.id)


def remove(
    conn: Connection,
    ctx: RequestContext,
    image_id: str,
    member_ids: list[str],
    single: Single,
    guard: Safeguards,
) -> list[Outcome]:
    """Remove the members from the image; one outcome per member (None: removed)."""
    record = load_authorized(conn, ctx, image_id, Action.GET_IMAGE)
    if record.visibility != "shared":
        raise Forbidden(members.ONLY_SHARED)
    authorize(ctx, Action.GET_MEMBER, target_of(record), image_id=image_id)
    if not _removes_in_sets(ctx, record, guard):
        return [single(member_id) for member_id in member_ids]
    rows = queries.members_among(conn, image_id, member_ids)
    outcomes: list[Outcome] = []
    gone: list[MemberRow] = []
    for member_id in member_ids:
        outcome, row = _judge_removal(image_id, member_id, rows)
        if outcome == SINGLE:
            _removed(conn, ctx, record, gone)
            gone = []
            outcome = single(member_id)
        elif row is not None:
            gone.append(row)
        outcomes.append(outcome)
    _removed(conn, ctx, record, gone)
    return outcomes


def _removes_in_sets(ctx: RequestContext, record: ImageRecord, guard: Safeguards) -> bool:
    """Can this caller's removals be judged here? The owner or an admin, with no impact check to
    make and no recycle-bin refusal; anyone else goes through the single calls."""
    target = target_of(record)
    return (
        not target.recycled
        and permits(ctx, Action.GET_ALL_MEMBERS, target)
        and permits(ctx, Action.DELETE_MEMBER, target)
        and (guard.override or not impact.protects(record, guard))
    )


def _judge_removal(
    image_id: str, member_id: str, rows: dict[str, MemberRow]
) -> tuple[Outcome, MemberRow | None]:
    if members.has_control(member_id):
        return members.not_found(image_id, member_id), None
    if domain_shares.domain_of(member_id) is not None:
        return SINGLE, None
    row = rows.get(member_id)
    if row is None:
        return members.not_found(image_id, member_id), None
    return None, row


def _removed(conn: Connection, ctx: RequestContext, record: ImageRecord, rows: list[MemberRow]) -> None:
    changes = [(row["member_id"], {"status": row["status"]}, None) for row in rows]
    events.record_member_events(conn, ctx, record.id, record.owner, events.MEMBER_REMOVED, changes)
    queries.delete_members(conn, record.id, [row["member_id"] for row in rows])
