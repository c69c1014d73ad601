"""The SQL of what roles confer: role implications, grants of a role on a project or domain, the
stored role assignments, and a user's effective roles (implied roles added).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, delete, exists, insert, or_, select

from spyglass.db.tables import role_assignments, role_implications, roles
from spyglass.identity.inputs import Row
from spyglass.identity.queries import TABLES, Kind, select_rows

Scope = Literal["project", "domain"]

# ---- roles and implications -----------------------------------------------------------------------


def delete_role(conn: Connection, role_id: str) -> None:
    """The role with its assignments and the implications it takes part in."""
    conn.execute(delete(role_assignments).where(role_assignments.c.role_id == role_id))
    edges = or_(role_implications.c.prior_role_id == role_id, role_implications.c.implied_role_id == role_id)
    conn.execute(delete(role_implications).where(edges))
    conn.execute(delete(roles).where(roles.c.id == role_id))


def implications(conn: Connection) -> list[tuple[str, str]]:
    """Every (prior role id, implied role id) pair."""
    stmt = select(role_implications.c.prior_role_id, role_implications.c.implied_role_id)
    return [(str(p), str(i)) for p, i in conn.execute(stmt)]


def _implied_by(prior_id: str) -> Any:
    """The ids of the roles the prior role implies directly, as a subquery."""
    return select(role_implications.c.implied_role_id).where(role_implications.c.prior_role_id == prior_id)


def implied_roles(conn: Connection, prior_id: str) -> list[Row]:
    """The roles the prior role implies directly."""
    return select_rows(conn, "role", {}, roles.c.id.in_(_implied_by(prior_id)))


def implies(conn: Connection, prior_id: str, implied_id: str) -> bool:
    return implied_id in {str(i) for i in conn.execute(_implied_by(prior_id)).scalars()}


def add_implication(conn: Connection, prior_id: str, implied_id: str) -> None:
    conn.execute(insert(role_implications).values(prior_role_id=prior_id, implied_role_id=implied_id))


def delete_implication(conn: Connection, prior_id: str, implied_id: str) -> None:
    conn.execute(
        delete(role_implications).where(
            role_implications.c.prior_role_id == prior_id,
            role_implications.c.implied_role_id == implied_id,
        )
    )


# ---- grants -----------------------------------------------------------------------------------------


def _grant_where(scope: Scope, scope_id: str, user_id: str, role_id: str | None = None) -> list[Any]:
    other = "domain" if scope == "project" else "project"
    where = [
        role_assignments.c.user_id == user_id,
        role_assignments.c[f"{scope}_id"] == scope_id,
        role_assignments.c[f"{other}_id"].is_(None),
    ]
    if role_id is not None:
        where.append(role_assignments.c.role_id == role_id)
    return where


def has_grant(conn: Connection, scope: Scope, scope_id: str, user_id: str, role_id: str) -> bool:
    return bool(
        conn.execute(select(exists().where(*_grant_where(scope, scope_id, user_id, role_id)))).scalar()
    )


def add_grant(conn: Connection, scope: Scope, scope_id: str, user_id: str, role_id: str) -> None:
    conn.execute(
        insert(role_assignments).values(user_id=user_id, role_id=role_id, **{f"{scope}_id": scope_id})
    )


def delete_grant(conn: Connection, scope: Scope, scope_id: str, user_id: str, role_id: str) -> bool:
    """Whether there was such a grant to delete."""
    result = conn.execute(delete(role_assignments).where(*_grant_where(scope, scope_id, user_id, role_id)))
    return bool(result.rowcount)


def granted_roles(conn: Connection, scope: Scope, scope_id: str, user_id: str) -> list[Row]:
    """The roles given directly to the user on the project or domain."""
    granted = select(role_assignments.c.role_id).where(*_grant_where(scope, scope_id, user_id))
    return select_rows(conn, "role", {}, roles.c.id.in_(granted))


# ---- stored assignments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredAssignment:
    user_id: str
    project_id: str | None
    domain_id: str | None
    role_id: str


def assignments(
    conn: Connection,
    *,
    user_id: str | None = None,
    project_id: str | None = None,
    domain_id: str | None = None,
    role_id: str | None = None,
) -> list[StoredAssignment]:
    """The role assignments matching every filter given, in the order they were made."""
    c = role_assignments.c
    filters = (
        (c.user_id, user_id),
        (c.project_id, project_id),
        (c.domain_id, domain_id),
        (c.role_id, role_id),
    )
    where = [column == value for column, value in filters if value is not None]
    stmt = select(c.user_id, c.project_id, c.domain_id, c.role_id).where(*where).order_by(c.id)
    return [StoredAssignment(*row) for row in conn.execute(stmt)]


def add_assignment(conn: Connection, user_id: str, project_id: str, role_id: str) -> None:
    conn.execute(insert(role_assignments).values(user_id=user_id, project_id=project_id, role_id=role_id))


def names(conn: Connection, kind: Kind) -> dict[str, str]:
    """Every entity's name by id."""
    table = TABLES[kind]
    return {str(i): str(n) for i, n in conn.execute(select(table.c.id, table.c.name))}


def domain_refs(
    conn: Connection, kind: Literal["project", "user"], ids: Iterable[str]
) -> list[tuple[str, str, str]]:
    """(id, name, domain id) of each of these projects or users."""
    table = TABLES[kind]
    stmt = select(table.c.id, table.c.name, table.c.domain_id).where(table.c.id.in_(list(ids)))
    return [(str(i), str(n), str(d)) for i, n, d in conn.execute(stmt)]


# ---- effective roles -------------------------------------------------------------------------------


def effective_roles(
    conn: Connection, user_id: str, *, project_id: str | None = None, domain_id: str | None = None
) -> list[dict[str, str]]:
    """The user's roles on the project or domain, with implied roles added (admin > member > reader)."""
    where = [role_assignments.c.user_id == user_id]
    if project_id is not None:
        where.append(role_assignments.c.project_id == project_id)
    else:
        where.append(role_assignments.c.domain_id == domain_id)
    direct = set(conn.execute(select(role_assignments.c.role_id).where(*where)).scalars())
    return expand_roles(conn, direct)


def expand_roles(conn: Connection, role_ids: set[str]) -> list[dict[str, str]]:
    """These roles and every role they imply, directly or not, by name."""
    edges: dict[str, list[str]] = {}
    for prior, implied in implications(conn):
        edges.setdefault(prior, []).append(implied)
    seen: set[str] = set()
    pending = list(role_ids)
    while pending:
        role_id = pending.pop()
        if role_id in seen:
            continue
        seen.add(role_id)
        pending.extend(edges.get(role_id, []))
    if not seen:
        return []
    rows = conn.execute(select(roles.c.id, roles.c.name).where(roles.c.id.in_(seen)).order_by(roles.c.name))
    return [{"id": r.id, "name": r.name} for r in rows]
