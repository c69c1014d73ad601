"""INSERT ... ON CONFLICT, in the dialect of the connection (SQLite and PostgreSQL spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert(dialect: str, table: Table) -> Any:
    """The dialect's insert construct, which offers on_conflict_do_update / _do_nothing."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
