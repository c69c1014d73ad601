"""The SQL of unified limits: registered limits, project and domain limits, and the one read the
image side makes on every quota check (a project's effective limits of one service)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from spyglass.db.tables import domains, project_limits, projects, registered_limits
from spyglass.identity.inputs import Row

# A limit row shows its registered limit's service, region and resource, as Keystone's does.
_LIMIT_COLUMNS = (
    project_limits.c.id,
    project_limits.c.project_id,
    project_limits.c.domain_id,
    registered_limits.c.service_id,
    registered_limits.c.region_id,
    registered_limits.c.resource_name,
    project_limits.c.resource_limit,
    project_limits.c.description,
)
_LIMITS = project_limits.join(
    registered_limits, project_limits.c.registered_limit_id == registered_limits.c.id
)
_REGISTERED_FILTERS = ("service_id", "region_id", "resource_name")


def _plain(row: Mapping[Any, Any]) -> Row:
    return {str(k): v for k, v in row.items()}


# ---- registered limits -------------------------------------------------------------------------


def registered(conn: Connection, registered_id: str) -> Row | None:
    row = conn.execute(select(registered_limits).where(registered_limits.c.id == registered_id)).mappings()
    found = row.first()
    return _plain(found) if found else None


def registered_list(conn: Connection, params: Mapping[str, str]) -> list[Row]:
    stmt = select(registered_limits).order_by(registered_limits.c.resource_name, registered_limits.c.id)
    for name in _REGISTERED_FILTERS:
        if name in params:
            stmt = stmt.where(registered_limits.c[name] == params[name])
    return [_plain(r) for r in conn.execute(stmt).mappings()]


def registered_matching(
    conn: Connection, service_id: str, region_id: str | None, resource_name: str, *, other_than: str = ""
) -> Row | None:
    """The registered limit of this service, region (None: none) and resource, if there is one."""
    c = registered_limits.c
    region = c.region_id.is_(None) if region_id is None else c.region_id == region_id
    stmt = select(registered_limits).where(
        c.service_id == service_id, region, c.resource_name == resource_name, c.id != other_than
    )
    found = conn.execute(stmt).mappings().first()
    return _plain(found) if found else None


def insert_registered(conn: Connection, row: Row) -> None:
    conn.execute(insert(registered_limits).values(**row))


def update_registered(conn: Connection, registered_id: str, changes: Row) -> None:
    conn.execute(update(registered_limits).where(registered_limits.c.id == registered_id).values(**changes))


def delete_registered(conn: Connection, registered_id: str) -> None:
    conn.execute(delete(registered_limits).where(registered_limits.c.id == registered_id))


def is_referenced(conn: Connection, registered_id: str) -> bool:
    stmt = select(exists().where(project_limits.c.registered_limit_id == registered_id))
    return bool(conn.execute(stmt).scalar())


# ---- project and domain limits -----------------------------------------------------------------


def limit(conn: Connection, limit_id: str) -> Row | None:
    stmt = select(*_LIMIT_COLUMNS).select_from(_LIMITS).where(project_limits.c.id == limit_id)
    found = conn.execute(stmt).mappings().first()
    return _plain(found) if found else None


def limit_list(conn: Connection, params: Mapping[str, str]) -> list[Row]:
    stmt = select(*_LIMIT_COLUMNS).select_from(_LIMITS).order_by(project_limits.c.id)
    for name in _REGISTERED_FILTERS:
        if name in params:
            stmt = stmt.where(registered_limits.c[name] == params[name])
    for name in ("project_id", "domain_id"):
        if name in params:
            stmt = stmt.where(project_limits.c[name] == params[name])
    return [_plain(r) for r in conn.execute(stmt).mappings()]


def limit_exists(conn: Connection, registered_id: str, project_id: str | None, domain_id: str | None) -> bool:
    c = project_limits.c
    owner = c.project_id == project_id if project_id is not None else c.domain_id == domain_id
    return bool(conn.execute(select(exists().where(c.registered_limit_id == registered_id, owner))).scalar())


def insert_limit(conn: Connection, row: Row) -> None:
    conn.execute(insert(project_limits).values(**row))


def update_limit(conn: Connection, limit_id: str, changes: Row) -> None:
    conn.execute(update(project_limits).where(project_limits.c.id == limit_id).values(**changes))


def delete_limit(conn: Connection, limit_id: str) -> None:
    conn.execute(delete(project_limits).where(project_limits.c.id == limit_id))


def delete_project_limits(conn: Connection, project_id: str) -> None:
    conn.execute(delete(project_limits).where(project_limits.c.project_id == project_id))


def delete_domain_limits(conn: Connection, domain_id: str) -> None:
    conn.execute(delete(project_limits).where(project_limits.c.domain_id == domain_id))


def owner_exists(conn: Connection, project_id: str | None, domain_id: str | None) -> bool:
    table, key = (projects, project_id) if project_id is not None else (domains, domain_id)
    return bool(conn.execute(select(exists().where(table.c.id == key))).scalar())


# ---- the image side's read ---------------------------------------------------------------------


def _own_limit(project: str) -> ColumnElement[Any]:
    """The project's own limit (bind parameter `project`) of the registered limit of the row at hand."""
    return (
        select(project_limits.c.resource_limit)
        .where(
            project_limits.c.registered_limit_id == registered_limits.c.id,
            project_limits.c.project_id == bindparam(project),
        )
        .scalar_subquery()
    )


def effective_statement(
    extra: Callable[[ColumnElement[str]], ColumnElement[Any]] | None = None,
) -> Select[Any]:
    """The registered limits of :service_id in :region_id (or no region), each with the override
    of :project_id; `extra(resource name)` is a column evaluated once per row (the image side takes
    its quota lock there, in the same round trip)."""
    c = registered_limits.c
    columns: list[Any] = [c.resource_name, c.region_id, c.default_limit, _own_limit("project_id")]
    if extra is not None:
        columns.append(extra(c.resource_name))
    return select(*columns).where(
        c.service_id == bindparam("service_id"),
        (c.region_id == bindparam("region_id")) | c.region_id.is_(None),
    )


# Built once: the image side reads it on every quota check.
EFFECTIVE = effective_statement()


def effective_limit_column(resource: str, *, service: str, region: str, project: str) -> ColumnElement[Any]:
    """`effective`'s answer for one resource as a scalar column, to ride in a statement of the
    caller's: the project's own limit of the service's registered limit in region :`region` (one of
    the region before one of no region), else that limit's default; NULL when none is registered.
    The arguments name the bind parameters that carry the service id, region and project id."""
    c = registered_limits.c
    return (
        select(func.coalesce(_own_limit(project), c.default_limit))
        .where(
            c.service_id == bindparam(service),
            c.resource_name == resource,
            (c.region_id == bindparam(region)) | c.region_id.is_(None),
        )
        .order_by(c.region_id.is_(None))
        .limit(1)
        .scalar_subquery()
    )


def effective(
    conn: Connection,
    service_id: str,
    region_id: str,
    project_id: str,
    resources: Sequence[str],
    statement: Select[Any] = EFFECTIVE,
) -> dict[str, int]:
    """resource name -> the project's limit of each registered resource of the service among
    `resources`: its own limit where it has one, else the default. A registered limit of another
    region does not apply; one of the region applies before one of no region. (The few rows are
    filtered here: an IN list in the statement would be rendered again on every execution.)"""
    params = {
        "service_id": service_id,
        "region_id": region_id,
        "project_id": project_id,
        "resources": list(resources),
    }
    limits: dict[str, int] = {}
    regional: set[str] = set()
    for name, region, default, override, *_ in conn.execute(statement, params):
        if name in regional or name not in resources:
            continue
        limits[name] = int(default if override is None else override)
        if region is not None:
            regional.add(name)
    return limits


def any_registered(conn: Connection, service_id: str) -> bool:
    return bool(conn.execute(select(exists().where(registered_limits.c.service_id == service_id))).scalar())
