"""Leaving a share: a member project ends its own membership of an image.

Glance lets only the owner remove a member (`DELETE /v2/images/{id}/members/{m}`, still 403 for a
member); a consumer could only reject, which keeps its row and the owner's view of it. Leaving
removes the row and records `member.left`, which reaches the owner (events and webhooks).

Who may: the member project itself with the member role, or an admin (Action.LEAVE_IMAGE). The
member row is found as every member action finds it: a project that cannot see the image gets 404,
and so does the owner naming a project that is not a member (the owner is never a member); the
owner naming a real member gets 403: removing a member is its DELETE, not a leave.
"""

from __future__ import annotations

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.images.policy import Action
from spyglass.sharing import queries as member_rows
from spyglass.sharing.members import _visible_member


def leave_image(db: Database, ctx: RequestContext, image_id: str, member_id: str) -> None:
    with db.write() as conn:
        record, row = _visible_member(conn, ctx, image_id, member_id, Action.LEAVE_IMAGE)
        before = {"status": row["status"]}
        events.record(
            conn, ctx, record.id, record.owner, events.MEMBER_LEFT, member_id=member_id, before=before
        )
        member_rows.delete_member(conn, image_id, member_id)
