"""The identity entities' SQL (domains, projects, users, roles): lookups that raise Keystone's NotFound
text, Keystone's simple list filters, inserts and updates that keep names unique, and what the
directory and bootstrap change in bulk. Roles' grants and implications are in role_queries.py,
tokens and failed logins in token_queries.py.

An entity is named by its kind ("domain", "project", "user", "role"). A name is unique within its
domain for entities that have one (projects, users) and everywhere for the rest (domains, roles),
as the table constraints say. Rows come back as plain dicts keyed by wire names (the API renders
them as they are) and never carry a password hash.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Table, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from spyglass.db.engine import Database
from spyglass.db.tables import domains, projects, role_assignments, roles, tokens, users
from spyglass.errors import Conflict, Invalid, NotFound
from spyglass.identity.inputs import Row, flag, text

Kind = Literal["domain", "project", "user", "role"]
TABLES: dict[Kind, Table] = {"domain": domains, "project": projects, "user": users, "role": roles}


def new_id() -> str:
    return uuid.uuid4().hex


def _columns(table: Table) -> list[Any]:
    return [c for c in table.c if c.name != "password_hash"]


def _plain(row: Mapping[Any, Any]) -> Row:
    # Column names come back as SQLAlchemy's str subclass, which orjson will not take as keys.
    return {str(k): v for k, v in row.items()}


# ---- one entity ---------------------------------------------------------------------------------


def fetch(conn: Connection, kind: Kind, entity_id: str) -> Row:
    table = TABLES[kind]
    row = conn.execute(select(*_columns(table)).where(table.c.id == entity_id)).mappings().first()
    if row is None:
        raise NotFound(f"Could not find {kind}: {entity_id}.")
    return _plain(row)


def fetch_referenced(conn: Connection, kind: Kind, entity_id: str) -> Row:
    """An entity named in a request body: unknown is a bad request, not a missing resource."""
    try:
        return fetch(conn, kind, entity_id)
    except NotFound as exc:
        raise Invalid(exc.message) from exc


def read_one(db: Database, kind: Kind, entity_id: str) -> Row:
    with db.read() as conn:
        return fetch(conn, kind, entity_id)


def project_enabled(conn: Connection, project_id: str) -> bool | None:
    """Whether the project is enabled; None when there is no such project."""
    found = conn.execute(select(projects.c.enabled).where(projects.c.id == project_id)).scalar()
    return None if found is None else bool(found)


def project_domain(conn: Connection, project_id: str) -> str | None:
    found = conn.execute(select(projects.c.domain_id).where(projects.c.id == project_id)).scalar()
    return str(found) if found else None


# ---- lists --------------------------------------------------------------------------------------


def select_rows(
    conn: Connection, kind: Kind, params: Mapping[str, str], *where: ColumnElement[bool]
) -> list[Row]:
    """Rows matching Keystone's simple filters (exact name, domain_id, enabled); others are ignored."""
    table = TABLES[kind]
    clauses = list(where)
    for key in ("name", "domain_id", "enabled"):
        if key in params and key in table.c:
            value: Any = flag(key, params[key]) if key == "enabled" else params[key]
            clauses.append(table.c[key] == value)
    stmt = select(*_columns(table)).where(*clauses).order_by(table.c.name, table.c.id)
    return [_plain(r) for r in conn.execute(stmt).mappings()]


def read_all(db: Database, kind: Kind, params: Mapping[str, str]) -> list[Row]:
    with db.read() as conn:
        return select_rows(conn, kind, params)


def _granted(user_id: str, column: str) -> Any:
    """The ids of the projects or domains (by `column`) on which the user has a role."""
    scope_id: ColumnElement[Any] = role_assignments.c[column]
    return select(scope_id).where(role_assignments.c.user_id == user_id, scope_id.is_not(None))


def granted_projects(conn: Connection, user_id: str, params: Mapping[str, str]) -> list[Row]:
    """The projects on which the user has a role, filtered by `params`."""
    return select_rows(conn, "project", params, projects.c.id.in_(_granted(user_id, "project_id")))


def reachable_projects(conn: Connection, user_id: str) -> list[Row]:
    """The enabled projects, in enabled domains, on which the user has a role."""
    enabled_domains = select(domains.c.id).where(domains.c.enabled)
    return select_rows(
        conn,
        "project",
        {},
        projects.c.id.in_(_granted(user_id, "project_id")),
        projects.c.enabled,
        projects.c.domain_id.in_(enabled_domains),
    )


def reachable_domains(conn: Connection, user_id: str) -> list[Row]:
    """The enabled domains on which the user has a role."""
    granted = domains.c.id.in_(_granted(user_id, "domain_id"))
    return select_rows(conn, "domain", {}, granted, domains.c.enabled)


def project_ids_in(conn: Connection, domain_id: str, *, enabled_only: bool = False) -> list[str]:
    where = [projects.c.domain_id == domain_id, *([projects.c.enabled] if enabled_only else [])]
    return [str(i) for i in conn.execute(select(projects.c.id).where(*where)).scalars()]


def user_ids_in(conn: Connection, domain_id: str) -> list[str]:
    return [str(i) for i in conn.execute(select(users.c.id).where(users.c.domain_id == domain_id)).scalars()]


def id_by_name(conn: Connection, kind: Kind, name: str, domain_id: str | None = None) -> str | None:
    """The id of the entity so named (in that domain, for projects and users), or None."""
    table = TABLES[kind]
    where = [table.c.name == name, *([table.c.domain_id == domain_id] if domain_id is not None else [])]
    value = conn.execute(select(table.c.id).where(*where)).scalar()
    return None if value is None else str(value)


# ---- writing ------------------------------------------------------------------------------------


def _name_scope(table: Table, row: Row) -> dict[str, str]:
    return {"domain_id": row["domain_id"]} if "domain_id" in table.c else {}


def _assert_unique(conn: Connection, table: Table, kind: str, name: str, scope: dict[str, str]) -> None:
    where = [table.c.name == name, *(table.c[k] == v for k, v in scope.items())]
    if conn.execute(select(exists().where(*where))).scalar():
        where_text = f" in domain {scope['domain_id']}" if "domain_id" in scope else ""
        raise Conflict(f"Conflict occurred attempting to store {kind} - duplicate name {name!r}{where_text}.")


def insert_named(conn: Connection, kind: Kind, fields: Row, **values: Any) -> Row:
    """A new entity with the name and description in `fields` and the other `values` given."""
    table = TABLES[kind]
    row = {"name": fields["name"], "description": text(fields.get("description")), **values}
    _assert_unique(conn, table, kind, row["name"], _name_scope(table, row))
    row["id"] = new_id()
    try:
        conn.execute(insert(table).values(**row))
    except IntegrityError as exc:  # a concurrent writer won the race for the name
        raise Conflict(f"Conflict occurred attempting to store {kind} - duplicate entry.") from exc
    return fetch(conn, kind, row["id"])


def insert_row(conn: Connection, kind: Kind, **values: Any) -> None:
    """A new entity exactly as given (first-start set-up, which checked the name itself)."""
    conn.execute(insert(TABLES[kind]).values(**values))


def renamed(row: Row, changes: Row) -> bool:
    return bool(changes.get("name", row["name"]) != row["name"])


def assert_rename_free(conn: Connection, kind: Kind, row: Row, changes: Row) -> None:
    """A new name in `changes` must not be taken already."""
    if renamed(row, changes):
        table = TABLES[kind]
        _assert_unique(conn, table, kind, changes["name"], _name_scope(table, row))


def save(conn: Connection, kind: Kind, entity_id: str, changes: Row) -> Row:
    """Apply the changes (if any) and return the entity as it now is."""
    if changes:
        table = TABLES[kind]
        try:
            conn.execute(update(table).where(table.c.id == entity_id).values(**changes))
        except IntegrityError as exc:
            raise Conflict("Conflict occurred attempting to store - duplicate entry.") from exc
    return fetch(conn, kind, entity_id)


def drop_scope(conn: Connection, kind: Literal["domain", "project"], entity_id: str) -> None:
    """Delete a project or domain with the role assignments on it and the tokens scoped to it."""
    column = f"{kind}_id"
    conn.execute(delete(role_assignments).where(role_assignments.c[column] == entity_id))
    conn.execute(delete(tokens).where(tokens.c[column] == entity_id))
    table = TABLES[kind]
    conn.execute(delete(table).where(table.c.id == entity_id))


def clear_default_project(conn: Connection, project_id: str) -> None:
    """Users whose default project this was have none any more."""
    stmt = update(users).where(users.c.default_project_id == project_id).values(default_project_id=None)
    conn.execute(stmt)


def delete_user(conn: Connection, user_id: str) -> None:
    """The user and their role assignments (their tokens are the caller's to revoke first)."""
    conn.execute(delete(role_assignments).where(role_assignments.c.user_id == user_id))
    conn.execute(delete(users).where(users.c.id == user_id))


# ---- passwords ----------------------------------------------------------------------------------


def password_hash(conn: Connection, user_id: str) -> str | None:
    stored = conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar()
    return None if stored is None else str(stored)


def replace_password_hash(conn: Connection, user_id: str, old: str | None, new: str | None) -> bool:
    """Compare-and-set the user's password hash; whether it was still `old`."""
    current = (users.c.id == user_id) & (users.c.password_hash == old)
    return bool(conn.execute(update(users).where(current).values(password_hash=new)).rowcount == 1)


def projects_enabled(conn: Connection, project_ids: list[str]) -> dict[str, bool]:
    """Whether each of these projects is enabled; a project that does not exist is left out."""
    stmt = select(projects.c.id, projects.c.enabled).where(projects.c.id.in_(project_ids))
    return {str(i): bool(enabled) for i, enabled in conn.execute(stmt)}
