"""The consumer inbox: the shares offered to the caller's project, across images.

`GET /v2/shared-images/invitations` lists the caller's project's member rows that are `pending`
(or, with `?status=`, `accepted`, `rejected` or `all`) on images it can see through them: shared
images, whose owner project is not disabled, and which are not in the recycle bin. It answers the
question Glance leaves open: "what has been shared with me that I have not accepted yet?"
Each entry also says when the share ends (`expires_at`, spyglass.sharing.expiry) and whether that
is within `member_expiry_warning_days` (`expiring`).
"""

from __future__ import annotations

from typing import Any

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Invalid
from spyglass.images.policy import Action, authorize
from spyglass.images.visibility import MEMBER_FILTERS
from spyglass.sharing import expiry, queries
from spyglass.sharing.queries import Invitation
from spyglass.timeutil import isotime


def list_invitations(
    db: Database, ctx: RequestContext, status: str = "pending", warning_days: int = 7
) -> list[dict[str, Any]]:
    authorize(ctx, Action.GET_INVITATIONS)
    if status not in MEMBER_FILTERS:
        raise Invalid(f"status must be one of {', '.join(MEMBER_FILTERS)}.")
    with db.read() as conn:
        found = queries.invitations(conn, ctx.project_id or "", None if status == "all" else status)
        entries = [_document(i) for i in found]
        return expiry.annotate_invitations(conn, ctx.project_id or "", entries, warning_days)


def _document(invitation: Invitation) -> dict[str, Any]:
    return {
        "image_id": invitation.image_id,
        "image_name": invitation.image_name,
        "owner": invitation.owner,
        "member_id": invitation.member_id,
        "status": invitation.status,
        "disk_format": invitation.disk_format,
        "size": invitation.size,
        "image_status": invitation.image_status,
        "created_at": isotime(invitation.created_at),
        "updated_at": isotime(invitation.updated_at),
    }
