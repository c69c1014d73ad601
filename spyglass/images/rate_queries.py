"""The SQL of per-project request rates: one UPSERT counts a request in its window and answers the
count; a project's first request of a window clears its old windows of that kind."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete

from spyglass.db import upsert
from spyglass.db.tables import request_counts


def count_request(conn: Connection, project_id: str, action: str, window_start: datetime) -> int:
    stmt = upsert.insert(conn.dialect.name, request_counts).values(
        project_id=project_id, action=action, window_start=window_start, count=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["project_id", "action", "window_start"],
        set_={"count": request_counts.c.count + 1},
    ).returning(request_counts.c.count)
    return int(conn.execute(stmt).scalar_one())


def forget_before(conn: Connection, project_id: str, action: str, window_start: datetime) -> None:
    c = request_counts.c
    conn.execute(
        delete(request_counts).where(
            c.project_id == project_id, c.action == action, c.window_start < window_start
        )
    )
