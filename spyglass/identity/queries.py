"""Reading and writing the identity rows (domains, projects, users, roles) that directory.py and
grants.py share: lookups that raise Keystone's NotFound text, Keystone's simple list filters, and
inserts and updates that keep names unique.

A name is unique within its domain for entities that have one (projects, users) and everywhere for
the rest (domains, roles), as the table constraints say. Rows come back as plain dicts keyed by wire
names and never carry a password hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from spyglass.db.engine import Database
from spyglass.db.tables import projects
from spyglass.errors import Conflict, Invalid, NotFound
from spyglass.identity.bootstrap import new_id
from spyglass.identity.inputs import Row, flag, text


def _columns(table: Table) -> list[Any]:
    return [c for c in table.c if c.name != "password_hash"]


def _plain(row: Mapping[Any, Any]) -> Row:
    # Column names come back as SQLAlchemy's str subclass, which orjson will not take as keys.
    return {str(k): v for k, v in row.items()}


def fetch(conn: Connection, table: Table, kind: str, entity_id: str) -> Row:
    row = conn.execute(select(*_columns(table)).where(table.c.id == entity_id)).mappings().first()
    if row is None:
        raise NotFound(f"Could not find {kind}: {entity_id}.")
    return _plain(row)


def fetch_referenced(conn: Connection, table: Table, kind: str, entity_id: str) -> Row:
    """An entity named in a request body: unknown is a bad request, not a missing resource."""
    try:
        return fetch(conn, table, kind, entity_id)
    except NotFound as exc:
        raise Invalid(exc.message) from exc


def select_rows(
    conn: Connection, table: Table, params: Mapping[str, str], *where: ColumnElement[bool]
) -> list[Row]:
    """Rows matching Keystone's simple filters (exact name, domain_id, enabled); others are ignored."""
    clauses = list(where)
    for key in ("name", "domain_id", "enabled"):
        if key in params and key in table.c:
            value: Any = flag(key, params[key]) if key == "enabled" else params[key]
            clauses.append(table.c[key] == value)
    stmt = select(*_columns(table)).where(*clauses).order_by(table.c.name, table.c.id)
    return [_plain(r) for r in conn.execute(stmt).mappings()]


def read_one(db: Database, table: Table, kind: str, entity_id: str) -> Row:
    with db.read() as conn:
        return fetch(conn, table, kind, entity_id)


def read_all(db: Database, table: Table, params: Mapping[str, str]) -> list[Row]:
    with db.read() as conn:
        return select_rows(conn, table, params)


def ids(conn: Connection, table: Table, *where: ColumnElement[bool]) -> list[str]:
    return [str(i) for i in conn.execute(select(table.c.id).where(*where)).scalars()]


def _name_scope(table: Table, row: Row) -> dict[str, str]:
    return {"domain_id": row["domain_id"]} if "domain_id" in table.c else {}


def _assert_unique(conn: Connection, table: Table, kind: str, name: str, scope: dict[str, str]) -> None:
    where = [table.c.name == name, *(table.c[k] == v for k, v in scope.items())]
    if conn.execute(select(exists().where(*where))).scalar():
        where_text = f" in domain {scope['domain_id']}" if "domain_id" in scope else ""
        raise Conflict(f"Conflict occurred attempting to store {kind} - duplicate name {name!r}{where_text}.")


def insert_named(conn: Connection, table: Table, kind: str, fields: Row, **values: Any) -> Row:
    """A new entity with the name and description in `fields` and the other `values` given."""
    row = {"name": fields["name"], "description": text(fields.get("description")), **values}
    _assert_unique(conn, table, kind, row["name"], _name_scope(table, row))
    row["id"] = new_id()
    try:
        conn.execute(insert(table).values(**row))
    except IntegrityError as exc:  # a concurrent writer won the race for the name
        raise Conflict(f"Conflict occurred attempting to store {kind} - duplicate entry.") from exc
    return fetch(conn, table, kind, row["id"])


def renamed(row: Row, changes: Row) -> bool:
    return bool(changes.get("name", row["name"]) != row["name"])


def assert_rename_free(conn: Connection, table: Table, kind: str, row: Row, changes: Row) -> None:
    """A new name in `changes` must not be taken already."""
    if renamed(row, changes):
        _assert_unique(conn, table, kind, changes["name"], _name_scope(table, row))


def save(conn: Connection, table: Table, kind: str, entity_id: str, changes: Row) -> Row:
    """Apply the changes (if any) and return the entity as it now is."""
    if changes:
        try:
            conn.execute(update(table).where(table.c.id == entity_id).values(**changes))
        except IntegrityError as exc:
            raise Conflict("Conflict occurred attempting to store - duplicate entry.") from exc
    return fetch(conn, table, kind, entity_id)


def project_enabled(conn: Connection, project_id: str) -> bool | None:
    """Whether the project is enabled; None when there is no such project."""
    found = conn.execute(select(projects.c.enabled).where(projects.c.id == project_id)).scalar()
    return None if found is None else bool(found)
