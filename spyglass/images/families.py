"""Image families: an owner's successive images of one thing, grouped by the `spyglass_family`
property (the owner's to set, although `spyglass_` is reserved).

`GET /v2/families/{family}/latest` answers the question automation asks of a family: the newest
(created_at, then id) active, non-deprecated image of it that the caller can see. Seeing follows
the image list's rule (spyglass.images.visibility): a shared image counts once its membership is
accepted. 404 when there is none.
"""

from __future__ import annotations

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import NotFound
from spyglass.images import deprecation_queries as dq
from spyglass.images import queries as q
from spyglass.images.policy import Action, authorize
from spyglass.images.queries import ImageRecord

FAMILY_MAX = 255


def latest(db: Database, ctx: RequestContext, family: str) -> ImageRecord:
    authorize(ctx, Action.GET_FAMILY_LATEST)
    with db.read() as conn:
        image_id = dq.family_latest(conn, ctx, family) if 0 < len(family) <= FAMILY_MAX else None
        record = q.fetch_image(conn, image_id, ctx.project_id) if image_id else None
    if record is None:
        raise NotFound(f"No active, non-deprecated image of family {family} found.")
    return record
