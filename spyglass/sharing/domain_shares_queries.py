"""The SQL of domain shares: the domain and its projects, the member rows a domain share made.

A domain share is the image_members row `domain:<domain id>`; the rows it made for the projects of
the domain are ordinary image_members rows, marked in image_member_origins (their mark goes with
them through the foreign key's cascade).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, delete, func, insert, select

from spyglass.db.tables import domains, image_member_origins, image_members, images, projects


def lock_domain(conn: Connection, domain_id: str) -> bool | None:
    """The domain's `enabled` (None: no such domain), its row locked until the transaction ends.

    Sharing with a domain and creating a project in it both take this lock, so that on
    PostgreSQL neither misses the other: the one that waits then sees what the other committed.
    """
    # FOR NO KEY UPDATE: a project insert holds KEY SHARE on its domain, which this must not wait for.
    stmt = select(domains.c.enabled).where(domains.c.id == domain_id).with_for_update(key_share=True)
    found = conn.execute(stmt).first()
    return None if found is None else bool(found.enabled)


def project_domain(conn: Connection, project_id: str) -> str | None:
    found = conn.execute(select(projects.c.domain_id).where(projects.c.id == project_id)).scalar()
    return None if found is None else str(found)


def domain_projects(conn: Connection, domain_id: str) -> list[str]:
    stmt = select(projects.c.id).where(projects.c.domain_id == domain_id).order_by(projects.c.id)
    return list(conn.execute(stmt).scalars())


def members_among(conn: Connection, image_id: str, project_ids: Sequence[str]) -> set[str]:
    """Which of these projects already have a member row on the image (direct or not)."""
    if not project_ids:
        return set()
    stmt = select(image_members.c.member_id).where(
        image_members.c.image_id == image_id, image_members.c.member_id.in_(project_ids)
    )
    return set(conn.execute(stmt).scalars())


def insert_rows(conn: Connection, domain_id: str, rows: list[dict[str, Any]]) -> None:
    """Member rows made by the domain's share, with their marks."""
    if not rows:
        return
    conn.execute(insert(image_members), rows)
    marks = [{"image_id": r["image_id"], "member_id": r["member_id"], "via_domain": domain_id} for r in rows]
    conn.execute(insert(image_member_origins), marks)


def _made_by(image_id: str, domain_id: str) -> Any:
    return and_(
        image_member_origins.c.image_id == image_id,
        image_member_origins.c.via_domain == domain_id,
        image_members.c.image_id == image_member_origins.c.image_id,
        image_members.c.member_id == image_member_origins.c.member_id,
    )


def rows_made_by(conn: Connection, image_id: str, domain_id: str) -> list[dict[str, Any]]:
    stmt = select(image_members).where(_made_by(image_id, domain_id)).order_by(image_members.c.member_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def delete_rows_made_by(conn: Connection, image_id: str, domain_id: str) -> None:
    made = select(image_member_origins.c.member_id).where(
        image_member_origins.c.image_id == image_id, image_member_origins.c.via_domain == domain_id
    )
    conn.execute(
        delete(image_members).where(image_members.c.image_id == image_id, image_members.c.member_id.in_(made))
    )


def origin(conn: Connection, image_id: str, member_id: str) -> str | None:
    """The domain whose share made this member row; None for a direct row (or no row)."""
    found = conn.execute(origin_of(image_id, member_id)).scalar()
    return None if found is None else str(found)


def unmark(conn: Connection, image_id: str, member_id: str) -> None:
    conn.execute(
        delete(image_member_origins).where(
            image_member_origins.c.image_id == image_id, image_member_origins.c.member_id == member_id
        )
    )


def entry_count(conn: Connection, image_id: str) -> int:
    """The image's member entries as the quota counts them: rows made by a domain share are not."""
    return int(conn.execute(entries(image_id)).scalar_one())


def entries(image_id: Any) -> Select[Any]:
    """The SQL of `entry_count` (a value or a bind parameter)."""
    marked = select(image_member_origins.c.member_id).where(image_member_origins.c.image_id == image_id)
    return select(func.count()).where(
        image_members.c.image_id == image_id, image_members.c.member_id.not_in(marked)
    )


def origin_of(image_id: Any, member_id: Any) -> Select[Any]:
    """The SQL of `origin`."""
    return select(image_member_origins.c.via_domain).where(
        image_member_origins.c.image_id == image_id, image_member_origins.c.member_id == member_id
    )


def shares_with(conn: Connection, member_id: str) -> list[tuple[str, str | None]]:
    """(image id, owner) of every image with this member entry (e.g. a domain share)."""
    stmt = (
        select(images.c.id, images.c.owner)
        .join(image_members, image_members.c.image_id == images.c.id)
        .where(image_members.c.member_id == member_id)
        .order_by(images.c.id)
    )
    return [(row.id, row.owner) for row in conn.execute(stmt)]


def origins_among(conn: Connection, image_id: str, member_ids: Sequence[str]) -> set[str]:
    """Which of these members' rows on the image a domain share made."""
    stmt = select(image_member_origins.c.member_id).where(
        image_member_origins.c.image_id == image_id, image_member_origins.c.member_id.in_(list(member_ids))
    )
    return {str(m) for m in conn.execute(stmt).scalars()}
