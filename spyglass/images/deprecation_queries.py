"""The SQL of deprecation and families: the image_deprecations rows, the schedule's compare-and-set
claims, the consumers to warn, the consumer's notices and the newest image of a family."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update

from spyglass.context import RequestContext
from spyglass.db.tables import image_deprecations, image_members, image_usage, images
from spyglass.images import list_queries, states
from spyglass.images.visibility import list_branches, list_condition

FAMILY_PROPERTY = "spyglass_family"


def fetch(conn: Connection, image_id: str) -> dict[str, Any] | None:
    found = conn.execute(select(image_deprecations).where(image_deprecations.c.image_id == image_id))
    row = found.mappings().first()
    return dict(row) if row is not None else None


def save(conn: Connection, values: dict[str, Any], *, exists_already: bool) -> None:
    """Insert the image's deprecation, or replace its terms (the caller holds the image's lock)."""
    if exists_already:
        image_id = values["image_id"]
        changes = {k: v for k, v in values.items() if k != "image_id"}
        conn.execute(
            update(image_deprecations).where(image_deprecations.c.image_id == image_id).values(**changes)
        )
    else:
        conn.execute(insert(image_deprecations).values(**values))


def remove(conn: Connection, image_id: str) -> None:
    conn.execute(delete(image_deprecations).where(image_deprecations.c.image_id == image_id))


def is_deprecated(image_id: Any) -> Any:
    """SQL: the image (a column or an id) has a deprecation row."""
    return exists(select(1).where(image_deprecations.c.image_id == image_id))


# ---- the schedule ------------------------------------------------------------------------------


def due_warnings(conn: Connection, horizon: datetime) -> list[str]:
    """Images becoming obsolete before `horizon` whose consumers were not warned yet."""
    stmt = select(image_deprecations.c.image_id).where(
        image_deprecations.c.obsolete_at <= horizon, image_deprecations.c.warned_at.is_(None)
    )
    return list(conn.execute(stmt.order_by(image_deprecations.c.obsolete_at)).scalars())


def claim_warning(conn: Connection, image_id: str, horizon: datetime, now: datetime) -> bool:
    """Compare-and-set: True for the one node (and round) that sends this warning."""
    claimed = conn.execute(
        update(image_deprecations)
        .where(
            image_deprecations.c.image_id == image_id,
            image_deprecations.c.obsolete_at <= horizon,
            image_deprecations.c.warned_at.is_(None),
        )
        .values(warned_at=now)
    )
    return claimed.rowcount == 1


def due_deletions(conn: Connection, now: datetime) -> list[str]:
    stmt = select(image_deprecations.c.image_id).where(
        image_deprecations.c.delete_at <= now, image_deprecations.c.deleted_at.is_(None)
    )
    return list(conn.execute(stmt.order_by(image_deprecations.c.delete_at)).scalars())


def claim_deletion(conn: Connection, image_id: str, now: datetime) -> bool:
    """Compare-and-set: True for the one node that deletes this image."""
    claimed = conn.execute(
        update(image_deprecations)
        .where(
            image_deprecations.c.image_id == image_id,
            image_deprecations.c.delete_at <= now,
            image_deprecations.c.deleted_at.is_(None),
        )
        .values(deleted_at=now)
    )
    return claimed.rowcount == 1


def consumers_beyond_members(conn: Connection, image_id: str, owner: str | None) -> list[str]:
    """Projects that downloaded the image and are neither its owner nor its members."""
    member = exists(
        select(1).where(
            image_members.c.image_id == image_id,
            image_members.c.member_id == image_usage.c.project_id,
        )
    )
    stmt = select(image_usage.c.project_id).where(
        image_usage.c.image_id == image_id, image_usage.c.project_id != (owner or ""), ~member
    )
    return list(conn.execute(stmt.order_by(image_usage.c.project_id)).scalars())


# ---- the consumer's side -----------------------------------------------------------------------


def notices(conn: Connection, ctx: RequestContext) -> list[dict[str, Any]]:
    """Deprecated images of other projects that the caller's project was offered or downloaded,
    and can still see: soonest obsolete first."""
    project = ctx.project_id or ""
    offered = exists(
        select(1).where(image_members.c.image_id == images.c.id, image_members.c.member_id == project)
    )
    used = exists(select(1).where(image_usage.c.image_id == images.c.id, image_usage.c.project_id == project))
    stmt = (
        select(images.c.id, images.c.name, images.c.owner, image_deprecations, offered.label("offered"))
        .join(image_deprecations, image_deprecations.c.image_id == images.c.id)
        .where(
            images.c.owner != project,
            offered | used,
            list_condition(ctx, visibility_filter="all", member_filter="all"),
            images.c.status.not_in((states.DELETED, states.PENDING_DELETE)),
        )
        .order_by(image_deprecations.c.obsolete_at.asc().nulls_last(), images.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def family_latest(conn: Connection, ctx: RequestContext, family: str) -> str | None:
    """The id of the newest active, non-deprecated image of the family the caller may list
    (the image list's rule: a shared image counts once its membership is accepted)."""
    conditions = [
        list_condition(ctx, visibility_filter="all", member_filter="accepted"),
        images.c.status == states.ACTIVE,
        list_queries.property_filter(FAMILY_PROPERTY, family),
        ~is_deprecated(images.c.id),
    ]
    branches = list_branches(ctx, visibility_filter="all", member_filter="accepted")
    rows = list_queries.page(conn, conditions, [("created_at", "desc"), ("id", "desc")], 1, branches)
    return str(rows[0]["id"]) if rows else None
