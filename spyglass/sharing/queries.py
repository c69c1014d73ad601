"""The sharing package's SQL: member rows, the consumer inbox, download usage and webhook registrations.

Services open the transaction and pass the Connection; these functions build and run the statements
and return typed values. The identity side's tables are read through spyglass.identity.queries,
but for a project's `enabled` in `admission`, the one statement of a member add's checks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from sqlalchemy import Connection, Select, String, bindparam, delete, exists, func, insert, select, update

from spyglass.db import upsert
from spyglass.db.tables import image_members, image_usage, images, projects, webhooks
from spyglass.images import states
from spyglass.images.visibility import owner_suspended
from spyglass.sharing.domain_shares_queries import entries, origin_of
from spyglass.sharing.trust_queries import trusted


class MemberRow(TypedDict):
    """One row of image_members, as the API renders it (spyglass.api.render.member)."""

    image_id: str
    member_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    # When the share ends (spyglass.sharing.expiry); absent when it has no end date.
    expires_at: NotRequired[datetime]


def _member(row: Any) -> MemberRow:
    return MemberRow(
        image_id=row.image_id,
        member_id=row.member_id,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _one_member(image_id: Any, member_id: Any) -> Any:
    """The row of one member (values or bind parameters)."""
    return (image_members.c.image_id == image_id) & (image_members.c.member_id == member_id)


# ---- members ----------------------------------------------------------------------------------------


# The statements of adding and removing one member, built once: building a statement per call costs
# more Python than SQLite takes to run it.
_MEMBER_ROW = select(image_members).where(_one_member(bindparam("image_id"), bindparam("member_id")))
_INSERT_MEMBER = insert(image_members)
_DELETE_MEMBER = delete(image_members).where(_one_member(bindparam("image_id"), bindparam("member_id")))
_TAKE_MEMBER = _DELETE_MEMBER.returning(*image_members.c)


def member_row(conn: Connection, image_id: str, member_id: str) -> MemberRow | None:
    row = conn.execute(_MEMBER_ROW, {"image_id": image_id, "member_id": member_id}).first()
    return _member(row) if row else None


@dataclass(frozen=True)
class Admission:
    """What adding a project as a member of an image depends on (spyglass.sharing.members)."""

    via_domain: str | None  # the domain share that made the project's row, if one did
    taken: bool  # the project has a member row already
    project_enabled: bool | None  # None: no such project
    entries: int  # the member entries the quota counts
    trusted: bool  # the project trusts the owner (spyglass.sharing.trust)


def _admission() -> Any:
    image_id, member_id, owner = (
        bindparam(name, type_=String) for name in ("image_id", "member_id", "owner")
    )
    return select(
        origin_of(image_id, member_id).scalar_subquery().label("via_domain"),
        exists().where(_one_member(image_id, member_id)).label("taken"),
        select(projects.c.enabled).where(projects.c.id == member_id).scalar_subquery().label("enabled"),
        entries(image_id).scalar_subquery().label("entries"),
        trusted(member_id, owner).label("trusted"),
    )


_ADMISSION = _admission()


def admission(conn: Connection, image_id: str, member_id: str, owner: str | None) -> Admission:
    """Everything `Admission` says, in one statement."""
    params = {"image_id": image_id, "member_id": member_id, "owner": owner or ""}
    row = conn.execute(_ADMISSION, params).one()
    enabled = None if row.enabled is None else bool(row.enabled)
    via = None if row.via_domain is None else str(row.via_domain)
    return Admission(via, bool(row.taken), enabled, int(row.entries), bool(row.trusted))


def count_members(conn: Connection, image_id: str) -> int:
    return int(conn.execute(select(func.count()).where(image_members.c.image_id == image_id)).scalar_one())


def insert_member(conn: Connection, row: MemberRow) -> None:
    conn.execute(_INSERT_MEMBER, dict(row))


def members_of(conn: Connection, image_id: str, only: str | None = None) -> list[MemberRow]:
    """The image's member rows, oldest first; with `only`, that member's row alone (if any)."""
    stmt = select(image_members).where(image_members.c.image_id == image_id)
    if only is not None:
        stmt = stmt.where(image_members.c.member_id == only)
    rows = conn.execute(stmt.order_by(image_members.c.created_at, image_members.c.member_id))
    return [_member(r) for r in rows]


def set_member_status(conn: Connection, image_id: str, member_id: str, status: str, now: datetime) -> None:
    conn.execute(
        update(image_members).where(_one_member(image_id, member_id)).values(status=status, updated_at=now)
    )


def delete_member(conn: Connection, image_id: str, member_id: str) -> None:
    conn.execute(_DELETE_MEMBER, {"image_id": image_id, "member_id": member_id})


def take_member(conn: Connection, image_id: str, member_id: str) -> MemberRow | None:
    """Delete the member row; what it was (None: there was none)."""
    row = conn.execute(_TAKE_MEMBER, {"image_id": image_id, "member_id": member_id}).first()
    return _member(row) if row else None


def end_project_sharing(conn: Connection, project_id: str, now: datetime) -> None:
    """Remove the project's memberships and its images' members; make its images private."""
    owned = select(images.c.id).where(images.c.owner == project_id).scalar_subquery()
    conn.execute(delete(image_members).where(image_members.c.image_id.in_(owned)))
    conn.execute(delete(image_members).where(image_members.c.member_id == project_id))
    conn.execute(
        update(images)
        .where(images.c.owner == project_id, images.c.visibility.in_(("public", "community", "shared")))
        .values(visibility="private", updated_at=now)
    )


# ---- the consumer inbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """A member row offered to a project, with what the inbox shows of its image."""

    image_id: str
    image_name: str | None
    owner: str | None
    member_id: str
    status: str
    disk_format: str | None
    size: int | None
    image_status: str
    created_at: datetime
    updated_at: datetime


def invitations(conn: Connection, project_id: str, status: str | None) -> list[Invitation]:
    """The project's member rows (of `status`, or all) on shared images it can see through them."""
    stmt = (
        select(
            image_members.c.image_id,
            images.c.name.label("image_name"),
            images.c.owner,
            image_members.c.member_id,
            image_members.c.status,
            images.c.disk_format,
            images.c.size,
            images.c.status.label("image_status"),
            image_members.c.created_at,
            image_members.c.updated_at,
        )
        .join(images, images.c.id == image_members.c.image_id)
        .where(
            image_members.c.member_id == project_id,
            images.c.visibility == "shared",
            images.c.status.not_in((states.DELETED, states.PENDING_DELETE)),
            ~owner_suspended(),
        )
        .order_by(image_members.c.created_at.desc(), image_members.c.image_id)
    )
    if status is not None:
        stmt = stmt.where(image_members.c.status == status)
    return [Invitation(**r) for r in conn.execute(stmt).mappings()]


# ---- usage --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    project_id: str
    downloads: int
    bytes: int
    first_download_at: datetime
    last_download_at: datetime


def count_download(conn: Connection, image_id: str, project_id: str, nbytes: int, now: datetime) -> None:
    """One more download of `nbytes` by the project (raises IntegrityError if the image is gone)."""
    values = {"image_id": image_id, "project_id": project_id, "nbytes": nbytes, "now": now}
    conn.execute(_upsert(conn.dialect.name), values)


@functools.cache
def _upsert(dialect: str) -> Any:
    """Built once per dialect: constructing the statement costs five times more than running it."""
    stmt = upsert.insert(dialect, image_usage).values(
        image_id=bindparam("image_id"),
        project_id=bindparam("project_id"),
        downloads=1,
        bytes=bindparam("nbytes"),
        first_download_at=bindparam("now"),
        last_download_at=bindparam("now"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[image_usage.c.image_id, image_usage.c.project_id],
        set_={
            "downloads": image_usage.c.downloads + 1,
            "bytes": image_usage.c.bytes + stmt.excluded.bytes,
            "last_download_at": stmt.excluded.last_download_at,
        },
    )


def usage_of(conn: Connection, image_id: str, only: str | None = None) -> list[Usage]:
    """The image's usage rows, latest download first; with `only`, that project's row alone."""
    u = image_usage.c
    stmt = select(u.project_id, u.downloads, u.bytes, u.first_download_at, u.last_download_at)
    stmt = stmt.where(u.image_id == image_id)
    if only is not None:
        stmt = stmt.where(u.project_id == only)
    rows = conn.execute(stmt.order_by(u.last_download_at.desc(), u.project_id)).mappings()
    return [Usage(**r) for r in rows]


# ---- webhook registrations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    id: str
    project_id: str
    url: str
    secret: str
    created_by: str | None
    created_at: datetime


def count_webhooks(conn: Connection, project_id: str) -> int:
    stmt = select(func.count()).where(webhooks.c.project_id == project_id)
    return int(conn.execute(stmt).scalar_one())


def insert_webhook(conn: Connection, hook: Webhook) -> None:
    conn.execute(insert(webhooks).values(**hook.__dict__))


def webhooks_of(conn: Connection, project_id: str) -> list[Webhook]:
    stmt: Select[Any] = select(webhooks).where(webhooks.c.project_id == project_id)
    return [Webhook(**r) for r in conn.execute(stmt.order_by(webhooks.c.created_at)).mappings()]


def owns_webhook(conn: Connection, project_id: str, webhook_id: str) -> bool:
    stmt = select(webhooks.c.id).where(webhooks.c.id == webhook_id, webhooks.c.project_id == project_id)
    return conn.execute(stmt).first() is not None


def delete_webhook(conn: Connection, webhook_id: str) -> None:
    """The webhook goes with its deliveries (the foreign key cascades)."""
    conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


# ---- many members of one image at once (spyglass.sharing.bulk_sets) -----------------------------


def members_among(conn: Connection, image_id: str, member_ids: Sequence[str]) -> dict[str, MemberRow]:
    """The member rows of these members on the image, by member id."""
    stmt = select(image_members).where(
        image_members.c.image_id == image_id, image_members.c.member_id.in_(list(member_ids))
    )
    return {row.member_id: _member(row) for row in conn.execute(stmt)}


def insert_members(conn: Connection, rows: list[MemberRow]) -> None:
    if rows:
        conn.execute(insert(image_members), [dict(row) for row in rows])


def delete_members(conn: Connection, image_id: str, member_ids: Sequence[str]) -> None:
    if member_ids:
        conn.execute(
            delete(image_members).where(
                image_members.c.image_id == image_id, image_members.c.member_id.in_(list(member_ids))
            )
        )
