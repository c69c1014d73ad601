"""The SQL of trusted owners (spyglass.sharing.trust) and of leaving a share (spyglass.sharing.leaving)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Exists, delete, exists, func, insert, or_, select

from spyglass.db.tables import domains, projects, trusted_owners


def project_exists(conn: Connection, project_id: str) -> bool:
    return conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first() is not None


def domain_exists(conn: Connection, domain_id: str) -> bool:
    return conn.execute(select(domains.c.id).where(domains.c.id == domain_id)).first() is not None


def lock_project(conn: Connection, project_id: str) -> None:
    """Serialize rule changes of one project (PostgreSQL; SQLite writers are serialized already),
    so that the duplicate check and the cap hold under concurrent requests."""
    conn.execute(select(projects.c.id).where(projects.c.id == project_id).with_for_update())


def count_rules(conn: Connection, project_id: str) -> int:
    stmt = select(func.count()).where(trusted_owners.c.project_id == project_id)
    count: int = conn.execute(stmt).scalar_one()
    return count


def find_rule(conn: Connection, project_id: str, column: str, value: str) -> str | None:
    """The id of the project's rule trusting `value` as `column` (owner or owner_domain), if any."""
    stmt = select(trusted_owners.c.id).where(
        trusted_owners.c.project_id == project_id, trusted_owners.c[column] == value
    )
    found: str | None = conn.execute(stmt).scalar()
    return found


def insert_rule(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(trusted_owners).values(**row))


def list_rules(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(trusted_owners)
        .where(trusted_owners.c.project_id == project_id)
        .order_by(trusted_owners.c.created_at, trusted_owners.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def delete_rule(conn: Connection, project_id: str, rule_id: str) -> bool:
    """Delete one of the project's rules; False when it has no such rule."""
    stmt = delete(trusted_owners).where(
        trusted_owners.c.id == rule_id, trusted_owners.c.project_id == project_id
    )
    return conn.execute(stmt).rowcount > 0


def trusts(conn: Connection, member_id: str, owner: str) -> bool:
    """Does the member project trust the owner project, by id or by the owner's domain?"""
    return bool(conn.execute(select(trusted(member_id, owner))).scalar())


def trusted(member_id: Any, owner: Any) -> Exists:
    """The SQL of `trusts`, for a statement that asks more at once (values or bind parameters)."""
    owner_domain = select(projects.c.domain_id).where(projects.c.id == owner).scalar_subquery()
    return exists().where(
        trusted_owners.c.project_id == member_id,
        or_(trusted_owners.c.owner == owner, trusted_owners.c.owner_domain == owner_domain),
    )


def delete_rules_of_project(conn: Connection, project_id: str) -> None:
    """A deleted project's own rules, and the rules that trusted it."""
    conn.execute(
        delete(trusted_owners).where(
            or_(trusted_owners.c.project_id == project_id, trusted_owners.c.owner == project_id)
        )
    )


def trusting(conn: Connection, member_ids: list[str], owner: str) -> set[str]:
    """Which of these member projects trust the owner project, by id or by the owner's domain."""
    owner_domain = select(projects.c.domain_id).where(projects.c.id == owner).scalar_subquery()
    stmt = select(trusted_owners.c.project_id).where(
        trusted_owners.c.project_id.in_(member_ids),
        or_(trusted_owners.c.owner == owner, trusted_owners.c.owner_domain == owner_domain),
    )
    return {str(p) for p in conn.execute(stmt).scalars()}
