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

from sqlalchemy import select

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import image_members, images
from spyglass.errors import Invalid
from spyglass.images import states
from spyglass.images.policy import Action, authorize
from spyglass.images.visibility import MEMBER_FILTERS, owner_suspended
from spyglass.sharing import expiry
from spyglass.timeutil import isotime


def list_invitations(
    db: Database, ctx: RequestContext, status: str = "pending", warning_days: int = 7
) -> list[dict[str, Any]]:
    authorize(ctx, Action.GET_INVITATIONS)
    if status not in MEMBER_FILTERS:
        raise Invalid(f"status must be one of {', '.join(MEMBER_FILTERS)}.")
    stmt = (
        select(
            image_members,
            images.c.name,
            images.c.owner,
            images.c.disk_format,
            images.c.size,
            images.c.status.label("image_status"),
        )
        .join(images, images.c.id == image_members.c.image_id)
        .where(
            image_members.c.member_id == (ctx.project_id or ""),
            images.c.visibility == "shared",
            images.c.status.not_in((states.DELETED, states.PENDING_DELETE)),
            ~owner_suspended(),
        )
        .order_by(image_members.c.created_at.desc(), image_members.c.image_id)
    )
    if status != "all":
        stmt = stmt.where(image_members.c.status == status)
    with db.read() as conn:
        entries = [_document(r) for r in conn.execute(stmt).mappings()]
        return expiry.annotate_invitations(conn, ctx.project_id or "", entries, warning_days)


def _document(row: Any) -> dict[str, Any]:
    return {
        "image_id": row["image_id"],
        "image_name": row["name"],
        "owner": row["owner"],
        "member_id": row["member_id"],
        "status": row["status"],
        "disk_format": row["disk_format"],
        "size": row["size"],
        "image_status": row["image_status"],
        "created_at": isotime(row["created_at"]),
        "updated_at": isotime(row["updated_at"]),
    }
