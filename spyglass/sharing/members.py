"""Image sharing: members of shared images, their statuses, and what project lifecycle does to them.

Who may do what is in spyglass.policy (ADD_MEMBER, GET_MEMBER(S), MODIFY_MEMBER, DELETE_MEMBER);
on top of it, a member row is itself visible only to the image owner, admins and that member, so a
project never learns which other projects an image is shared with.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from spyglass.images import impact as safeguards
from spyglass.images.catalog import load_authorized, target_of, update_image_in
from spyglass.images.impact import GLANCE, Safeguards
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.images.queries import ImageRecord
from spyglass.images.visibility import MEMBER_STATUSES
from spyglass.sharing import domain_shares, expiry, queries, trust
from spyglass.sharing.queries import MemberRow
from spyglass.timeutil import utcnow

PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
STATUS_MESSAGE = 'Incorrect request: Status must be "pending", "accepted" or "rejected".'


def _is_member(record: ImageRecord) -> bool:
    """The caller's row counts only while the image is shared (rows outlive visibility changes)."""
    return record.member_status is not None and record.visibility == "shared"


def has_control(member_id: str) -> bool:
    # Project ids never hold control characters, and PostgreSQL cannot even compare a NUL.
    return any(ord(char) < 32 or ord(char) == 127 for char in member_id)


def not_found(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"Member {member_id} not found for image {image_id}.")


def project_refusal(member_id: str, enabled: bool | None) -> Invalid | None:
    """Why a project cannot be a member (enabled None: it does not exist), or None."""
    if enabled is None:
        return Invalid(
            f"Project {member_id} does not exist; an image can only be shared with an existing project."
        )
    if not enabled:
        return Invalid(f"Project {member_id} is disabled; an image cannot be shared with it.")
    return None


def duplicated(image_id: str, member_id: str) -> Conflict:
    return Conflict(f"Member {member_id} is duplicated for image {image_id}")


def over_quota(count: int, quota: int) -> TooLarge:
    return TooLarge(f"The image already has {count} members, the most allowed ({quota}).")


CONTROL_REFUSAL = "Member must be a project id; control characters are not allowed."
ONLY_SHARED = "Only shared images have members."


def add_member(
    db: Database, ctx: RequestContext, image_id: str, body: Any, *, quota: int, validate: bool
) -> MemberRow:
    with db.write() as conn:
        return add_member_in(conn, ctx, image_id, body, quota=quota, validate=validate)


def share_and_add_member(
    db: Database, ctx: RequestContext, image_id: str, body: Any, *, quota: int, validate: bool
) -> MemberRow:
    """add_member to an image that is made `shared` first if it is not, in one transaction: a
    member refused (invalid, disabled, over quota, a duplicate) leaves the visibility as it was.
    This is the dashboard's share form; the API keeps Glance's two calls."""
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.ADD_MEMBER, lock=True)
        if record.visibility != "shared":
            ops = [{"op": "replace", "path": "/visibility", "value": "shared"}]
            update_image_in(conn, ctx, image_id, ops, PATCH_MEDIA_TYPE)
        return add_member_in(conn, ctx, image_id, body, quota=quota, validate=validate)


def add_member_in(
    conn: Connection, ctx: RequestContext, image_id: str, body: Any, *, quota: int, validate: bool
) -> MemberRow:
    """add_member in the caller's transaction (spyglass.sharing.bulk runs many in one)."""
    record = load_authorized(conn, ctx, image_id, Action.ADD_MEMBER, lock=True)
    if record.visibility != "shared":
        raise Forbidden(f"Not allowed to create members for image {image_id}.")
    member_id = body.get("member") if isinstance(body, dict) else None
    if not member_id:
        raise Invalid("Member to be added not specified")
    if not isinstance(member_id, str) or len(member_id) > 255:
        raise Invalid("Member must be a project id (a string of at most 255 characters).")
    if has_control(member_id):
        raise Invalid(CONTROL_REFUSAL)
    if domain_shares.domain_of(member_id) is not None:
        if isinstance(body, dict) and body.get("expires_at") is not None:
            raise Invalid("A share with a whole domain cannot have an expiry; give each project its own.")
        return domain_shares.add(conn, ctx, record, member_id, quota=quota)
    # Whatever the checks below read, in one statement (made after the image's lock).
    facts = queries.admission(conn, image_id, member_id, record.owner)
    if facts.via_domain is not None:
        made_direct = domain_shares.make_direct(conn, ctx, record, member_id, quota=quota)
        if made_direct is not None:
            expiry.on_member_added(conn, made_direct, body)
            return expiry.with_expiry(conn, made_direct)
        # The row went meanwhile (removing a member does not take the image's lock): read again.
        facts = queries.admission(conn, image_id, member_id, record.owner)
    if facts.taken:
        raise duplicated(image_id, member_id)
    refused = project_refusal(member_id, facts.project_enabled) if validate else None
    if refused is not None:
        raise refused
    if facts.entries >= quota:
        raise over_quota(facts.entries, quota)
    now = utcnow()
    status = trust.status_for(record.owner, member_id, trusted=facts.trusted)
    row = MemberRow(image_id=image_id, member_id=member_id, status=status, created_at=now, updated_at=now)
    queries.insert_member(conn, row)
    safeguards.member_added(conn, ctx, record, member_id, status)
    # A new row has no expiry but the one the body gives (an old row's went with it: the cascade).
    expiry.on_member_added(conn, row, body)
    return row


def list_members(db: Database, ctx: RequestContext, image_id: str) -> list[MemberRow]:
    with db.read() as conn:
        record = load_authorized(conn, ctx, image_id, Action.GET_IMAGE)
        if record.visibility != "shared":
            raise Forbidden(ONLY_SHARED)
        authorize(ctx, Action.GET_MEMBERS, target_of(record), image_id=image_id)
        everyone = permits(ctx, Action.GET_ALL_MEMBERS, target_of(record))
        if not everyone and not _is_member(record):
            raise NotFound(f"No image found with ID {image_id}")
        rows = queries.members_of(conn, image_id, None if everyone else ctx.project_id or "")
        return expiry.with_expiries(conn, image_id, rows)


def _visible_member(
    conn: Connection, ctx: RequestContext, image_id: str, member_id: str, action: Action
) -> tuple[ImageRecord, MemberRow]:
    """The image and the member row, if the caller may see that row (404 otherwise). As Glance, an
    image that is not shared has no members: 403 to whoever can see the image, before any row."""
    record = _member_image(conn, ctx, image_id, member_id)
    row = queries.member_row(conn, image_id, member_id)
    if row is None:
        raise not_found(image_id, member_id)
    _authorize_on_row(ctx, record, member_id, action)
    return record, row


def _member_image(conn: Connection, ctx: RequestContext, image_id: str, member_id: str) -> ImageRecord:
    """The checks of `_visible_member` that come before the row."""
    record = load_authorized(conn, ctx, image_id, Action.GET_IMAGE)
    if record.visibility != "shared":
        raise Forbidden(ONLY_SHARED)
    authorize(ctx, Action.GET_MEMBER, target_of(record), image_id=image_id)
    everyone = permits(ctx, Action.GET_ALL_MEMBERS, target_of(record))
    if not everyone and (member_id != ctx.project_id or not _is_member(record)):
        raise not_found(image_id, member_id)
    if has_control(member_id):
        raise not_found(image_id, member_id)
    return record


def _authorize_on_row(ctx: RequestContext, record: ImageRecord, member_id: str, action: Action) -> None:
    target = target_of(record)
    authorize(ctx, action, Target(**{**target.__dict__, "member_id": member_id}), image_id=record.id)


def get_member(db: Database, ctx: RequestContext, image_id: str, member_id: str) -> MemberRow:
    with db.read() as conn:
        row = _visible_member(conn, ctx, image_id, member_id, Action.GET_MEMBER)[1]
        return expiry.with_expiry(conn, row)


def update_member(db: Database, ctx: RequestContext, image_id: str, member_id: str, body: Any) -> MemberRow:
    with db.write() as conn:
        record, row = _visible_member(conn, ctx, image_id, member_id, Action.MODIFY_MEMBER)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in MEMBER_STATUSES:
            raise Invalid(STATUS_MESSAGE)
        domain_shares.refuse_status(member_id)
        safeguards.member_status_changing(conn, ctx, record, row, status)
        now = utcnow()
        queries.set_member_status(conn, image_id, member_id, status, now)
        return expiry.with_expiry(conn, {**row, "status": status, "updated_at": now})


def delete_member(
    db: Database, ctx: RequestContext, image_id: str, member_id: str, guard: Safeguards = GLANCE
) -> None:
    with db.write() as conn:
        delete_member_in(conn, ctx, image_id, member_id, guard)


def delete_member_in(
    conn: Connection, ctx: RequestContext, image_id: str, member_id: str, guard: Safeguards = GLANCE
) -> None:
    """delete_member in the caller's transaction (spyglass.sharing.bulk runs many in one)."""
    record = _member_image(conn, ctx, image_id, member_id)
    # The row goes at once (the read and the delete in one statement): a refusal below rolls the
    # transaction (or bulk's savepoint) back, and the row with it.
    row = queries.take_member(conn, image_id, member_id)
    if row is None:
        raise not_found(image_id, member_id)
    _authorize_on_row(ctx, record, member_id, Action.DELETE_MEMBER)
    safeguards.member_removing(conn, ctx, record, row, guard)
    domain_shares.member_removing(conn, ctx, record, member_id, guard)


# ---- project lifecycle -------------------------------------------------------------------------------


def on_project_deleted(conn: Connection, project_id: str) -> None:
    """A deleted project's images stop being shared and its memberships on others' images go.

    Its images and their data are kept (an admin can still see, reassign or delete them), but no
    other project can reach them: member rows are removed and public/community images become
    private, so that nothing comes back if a project with the same id ever reappears.
    """
    queries.end_project_sharing(conn, project_id, utcnow())


def on_project_disabled(conn: Connection, project_id: str) -> None:
    """A disabled project keeps everything; visibility.owner_suspended hides its images meanwhile."""
