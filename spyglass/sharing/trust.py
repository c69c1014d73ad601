"""How much a member project trusts an owner: the status a new member row starts in."""

from __future__ import annotations

from sqlalchemy import Connection


def initial_status(conn: Connection, owner_project_id: str, member_project_id: str) -> str:
    """The status of a new member row, for a direct share and for each project of a domain share."""
    return "pending"
