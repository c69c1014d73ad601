"""The SQL of image quotas: a project's usage of Glance's four resources in one statement, the
per-project lock that makes check and reservation one step, and the reservations of data in flight.

Usage is read from the images themselves (what is stored, staged, in flight) plus the reservations
of transfers still running, so nothing can drift out of step with the catalog. The count of images a
project owns is the exception: it is read from the project's row of `project_image_counts`, which
triggers on `images` keep (migration 0017), so that a create's check costs the same however many
images the project has.

Two locks make a check and what it accounts one step on PostgreSQL (SQLite serializes writers):
the project's count row for `image_count_total` (a write that changes the count holds it to its
commit), and a per-project advisory lock for the other resources. Where both are taken, the row
comes first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, String, any_, bindparam, case, delete, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from spyglass.db import upsert
from spyglass.db.tables import (
    image_locations,
    image_properties,
    images,
    project_image_counts,
    quota_reservations,
)
from spyglass.images import states

IMAGE_SIZE_TOTAL = "image_size_total"
IMAGE_STAGE_TOTAL = "image_stage_total"
IMAGE_COUNT_TOTAL = "image_count_total"
IMAGE_COUNT_UPLOADING = "image_count_uploading"
RESOURCES = (IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL, IMAGE_COUNT_TOTAL, IMAGE_COUNT_UPLOADING)
# Glance's import bookkeeping: an active image copying its data to more stores.
_IMPORTING_TO = "os_glance_importing_to_stores"
# The first key of PostgreSQL's two-key advisory locks that Spyglass takes for quotas.
_LOCK_CLASS = 0x51_07A5


def lock_project(conn: Connection, project_id: str) -> None:
    """Hold the project's quota lock (of every resource but the count) until commit. SQLite writers
    are serialized already."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(project_id))))


def needs_lock(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def lock_column(resource_name: ColumnElement[str]) -> ColumnElement[Any]:
    """`lock_project` as a column of the statement that reads the limits (PostgreSQL): the lock of
    :project_id, taken in the round trip of that statement, when a row names one of :resources
    other than the count (whose lock is its row: `hold_count`)."""
    wanted = bindparam("resources", type_=postgresql.ARRAY(String))
    locked = func.pg_advisory_xact_lock(_LOCK_CLASS, func.hashtext(bindparam("project_id", type_=String)))
    return case(((resource_name == any_(wanted)) & (resource_name != IMAGE_COUNT_TOTAL), locked))


def hold_count(conn: Connection, project_id: str) -> None:
    """Hold the project's count row until commit (PostgreSQL; made if the project has none yet),
    before a check of the count that comes before the write it accounts (a write that changes the
    count takes the row itself, in the trigger)."""
    if conn.dialect.name != "postgresql":
        return
    stmt = postgresql.insert(project_image_counts).values(project_id=project_id, images=0)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["project_id"], set_={"images": project_image_counts.c.images}
        )
    )


def count_column(project: str = "project_id") -> ColumnElement[int]:
    """The count of images the project owns, as a column; `project` names the bind parameter that
    carries the project id."""
    counted = (
        select(project_image_counts.c.images)
        .where(project_image_counts.c.project_id == bindparam(project, type_=String))
        .scalar_subquery()
    )
    return func.coalesce(counted, 0)


_PROJECT: BindParameter[str] = bindparam("project_id")
_IMAGE: BindParameter[str] = bindparam("image_id")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the two below
class _Scope:
    """Whose usage a statement measures: a project's (what it owns and reserved), or one image's
    (what it counts for its owner, to move to another)."""

    images: ColumnElement[bool]
    reservations: ColumnElement[bool]


_OF_PROJECT = _Scope(images.c.owner == _PROJECT, quota_reservations.c.project_id == _PROJECT)
_OF_IMAGE = _Scope(images.c.id == _IMAGE, quota_reservations.c.image_id == _IMAGE)


def _reserved(scope: _Scope, resource: str) -> ColumnElement[int]:
    r = quota_reservations.c
    stmt = select(func.coalesce(func.sum(r.amount), 0)).where(scope.reservations, r.resource_name == resource)
    return stmt.scalar_subquery()


def _stored(scope: _Scope) -> ColumnElement[int]:
    """Bytes of data the project's images hold, counted once per location (Glance's rule)."""
    copies = (
        select(func.count()).select_from(image_locations).where(image_locations.c.image_id == images.c.id)
    ).scalar_subquery()
    total = func.sum(images.c.size * (1 + copies))
    stmt = select(func.coalesce(total, 0)).where(
        scope.images,
        images.c.blob_key.is_not(None),
        images.c.status.not_in((states.KILLED, states.DELETED)),
    )
    return stmt.scalar_subquery()


def _staged(scope: _Scope) -> ColumnElement[int]:
    """Bytes in the staging area: staged and not yet imported into a store."""
    stmt = select(func.coalesce(func.sum(images.c.size), 0)).where(
        scope.images,
        images.c.status.in_((states.UPLOADING, states.IMPORTING)),
        images.c.blob_key.is_(None),
    )
    return stmt.scalar_subquery()


def _owned(scope: _Scope) -> ColumnElement[int]:
    if scope is _OF_PROJECT:
        return count_column()
    # One image's count: 1, or 0 when its status does not count (the triggers' rule).
    stmt = select(func.count()).where(scope.images, images.c.status.not_in((states.KILLED, states.DELETED)))
    return stmt.scalar_subquery()


def _in_flight(scope: _Scope) -> ColumnElement[int]:
    """Uploads, stages and imports running, and copies to more stores (Glance's rule)."""
    p = image_properties.c
    copying = (
        select(p.image_id).where(p.image_id == images.c.id, p.name == _IMPORTING_TO, p.value != "").exists()
    )
    transferring = images.c.status.in_((states.SAVING, states.UPLOADING, states.IMPORTING))
    stmt = select(func.count()).where(
        scope.images, transferring | ((images.c.status == states.ACTIVE) & copying)
    )
    return stmt.scalar_subquery()


_MEASURES: dict[str, Callable[[_Scope], ColumnElement[int]]] = {
    IMAGE_SIZE_TOTAL: lambda scope: _stored(scope) + _reserved(scope, IMAGE_SIZE_TOTAL),
    IMAGE_STAGE_TOTAL: lambda scope: _staged(scope) + _reserved(scope, IMAGE_STAGE_TOTAL),
    IMAGE_COUNT_TOTAL: _owned,
    IMAGE_COUNT_UPLOADING: _in_flight,
}


@functools.cache
def _usage_statement(resources: tuple[str, ...], scope: _Scope) -> Select[Any]:
    # Built once per set of resources: a quota check runs on every create and upload.
    columns: list[Any] = [_MEASURES[r](scope).label(r) for r in resources]
    stmt: Select[Any] = select(*columns)
    return stmt


def usage(conn: Connection, project_id: str, resources: Iterable[str]) -> dict[str, int]:
    """The project's usage of each resource asked for (bytes for sizes), read in one statement so
    that a transfer which swaps its reservation for its image's size is seen on one side only."""
    return _measure(conn, tuple(resources), _OF_PROJECT, {"project_id": project_id})


def image_usage(conn: Connection, image_id: str, resources: Iterable[str]) -> dict[str, int]:
    """What the image counts for its owner, of each resource asked for."""
    return _measure(conn, tuple(resources), _OF_IMAGE, {"image_id": image_id})


def _measure(
    conn: Connection, wanted: tuple[str, ...], scope: _Scope, params: dict[str, str]
) -> dict[str, int]:
    if not wanted:
        return {}
    row = conn.execute(_usage_statement(wanted, scope), params).one()
    return {r: int(row._mapping[r] or 0) for r in wanted}


def image_owner(conn: Connection, image_id: str) -> tuple[bool, str | None]:
    """Whether the image is there, and its owner now; on PostgreSQL the row is held against an owner
    change until commit (a change in progress is waited for)."""
    stmt = select(images.c.owner).where(images.c.id == image_id).with_for_update(read=True)
    row = conn.execute(stmt).one_or_none()
    return (False, None) if row is None else (True, row.owner)


def move_reservations(conn: Connection, image_id: str, project_id: str) -> None:
    """The image's transfers in flight count for its new owner."""
    r = quota_reservations.c
    conn.execute(update(quota_reservations).where(r.image_id == image_id).values(project_id=project_id))


def reserved(conn: Connection, image_id: str, resource: str) -> int:
    r = quota_reservations.c
    found = conn.execute(select(r.amount).where(r.image_id == image_id, r.resource_name == resource)).scalar()
    return int(found or 0)


def set_reservation(
    conn: Connection, image_id: str, resource: str, project_id: str, amount: int, now: datetime
) -> None:
    stmt = upsert.insert(conn.dialect.name, quota_reservations).values(
        image_id=image_id, resource_name=resource, project_id=project_id, amount=amount, created_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["image_id", "resource_name"], set_={"amount": stmt.excluded.amount}
        )
    )


def release(conn: Connection, image_id: str, resource: str | None = None) -> None:
    stmt = delete(quota_reservations).where(quota_reservations.c.image_id == image_id)
    if resource is not None:
        stmt = stmt.where(quota_reservations.c.resource_name == resource)
    conn.execute(stmt)


def release_all(conn: Connection) -> int:
    """Every reservation: start-up recovery, when no transfer is running."""
    return int(conn.execute(delete(quota_reservations)).rowcount or 0)
