"""The SQL of tasks (spyglass.data.tasks): rows written when a task starts and ends, the lists the
tasks API and `GET /v2/images/{id}/tasks` read, and the purge of expired tasks.

A task that has expired (`expires_at` in the past) is gone for every reader, before the purge
deletes its row. Status changes are compare-and-set: a task ends once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, literal, or_, select, update

from spyglass.db.tables import tasks

PENDING = "pending"
PROCESSING = "processing"
SUCCESS = "success"
FAILURE = "failure"
STATUSES = (PENDING, PROCESSING, SUCCESS, FAILURE)
UNFINISHED = (PENDING, PROCESSING)

# The columns a list may be sorted and filtered by (Glance accepts any column of its task table).
COLUMNS = ("id", "type", "status", "owner", "image_id", "request_id", "user_id")
SORT_KEYS = (*COLUMNS, "created_at", "updated_at", "expires_at")


@dataclass(frozen=True)
class TaskRecord:
    id: str
    type: str
    status: str
    owner: str | None
    image_id: str | None
    request_id: str | None
    user_id: str | None
    input: dict[str, Any] | None
    result: dict[str, Any] | None
    message: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> TaskRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def columns(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def insert_task(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(tasks).values(**row))


def change_status(
    conn: Connection, task_id: str, before: Sequence[str], *, status: str, now: datetime, **values: Any
) -> bool:
    """Move the task from one of the `before` statuses to `status`; False if it was in none of them."""
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_(before))
        .values(status=status, updated_at=now, **values)
    )
    return result.rowcount == 1


def set_image(conn: Connection, task_id: str, image_id: str, now: datetime) -> None:
    conn.execute(update(tasks).where(tasks.c.id == task_id).values(image_id=image_id, updated_at=now))


def end_unfinished(conn: Connection, message: str, now: datetime, expires_at: datetime) -> int:
    """Every task still pending or processing ends in failure (start-up recovery)."""
    result = conn.execute(
        update(tasks)
        .where(tasks.c.status.in_(UNFINISHED))
        .values(status=FAILURE, message=message, updated_at=now, expires_at=expires_at)
    )
    return int(result.rowcount)


def _live(now: datetime) -> ColumnElement[bool]:
    return or_(tasks.c.expires_at.is_(None), tasks.c.expires_at > now)


def _owned(owner: str | None) -> list[ColumnElement[bool]]:
    """None: every project's tasks (an admin's view); else the tasks of project `owner`."""
    return [] if owner is None else [tasks.c.owner == owner]


def fetch_task(conn: Connection, task_id: str, now: datetime) -> TaskRecord | None:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id, _live(now))).mappings().first()
    return None if row is None else TaskRecord.of(row)


def of_image(conn: Connection, image_id: str, owner: str | None, now: datetime) -> list[TaskRecord]:
    """The live tasks of an image, oldest first, of project `owner` (None: of every project)."""
    stmt = (
        select(tasks)
        .where(tasks.c.image_id == image_id, _live(now), *_owned(owner))
        .order_by(tasks.c.created_at, tasks.c.id)
    )
    return [TaskRecord.of(row) for row in conn.execute(stmt).mappings()]


# Columns that may be NULL sort as if they held these values: keyset pagination needs a total order.
_NULL_SORTS_AS: dict[str, Any] = {
    "owner": "",
    "image_id": "",
    "request_id": "",
    "user_id": "",
    "expires_at": datetime(1970, 1, 1),
}


def _sorted(key: str) -> ColumnElement[Any]:
    column: ColumnElement[Any] = tasks.c[key]
    if key in _NULL_SORTS_AS:
        return func.coalesce(column, literal(_NULL_SORTS_AS[key]))
    return column


def _sort_value(marker: TaskRecord, key: str) -> Any:
    value = getattr(marker, key)
    return _NULL_SORTS_AS.get(key) if value is None else value


def _after(sort: Sequence[str], direction: str, marker: TaskRecord) -> ColumnElement[bool]:
    """Rows strictly after the marker in the order (keyset pagination)."""
    clauses = []
    for i, key in enumerate(sort):
        equal_before = [_sorted(k) == _sort_value(marker, k) for k in sort[:i]]
        value = _sort_value(marker, key)
        beyond = _sorted(key) > value if direction == "asc" else _sorted(key) < value
        clauses.append(and_(*equal_before, beyond))
    return or_(*clauses)


def page(
    conn: Connection,
    owner: str | None,
    filters: Mapping[str, str],
    sort_key: str,
    sort_dir: str,
    marker: TaskRecord | None,
    limit: int,
    now: datetime,
) -> list[TaskRecord]:
    """One page of live tasks: `filters` are column == value, the order is `sort_key` then
    created_at then id, all in `sort_dir` (Glance's order)."""
    sort = list(dict.fromkeys((sort_key, "created_at", "id")))
    conditions = [_live(now), *_owned(owner), *(tasks.c[k] == v for k, v in filters.items())]
    if marker is not None:
        conditions.append(_after(sort, sort_dir, marker))
    order = [_sorted(k).asc() if sort_dir == "asc" else _sorted(k).desc() for k in sort]
    stmt = select(tasks).where(*conditions).order_by(*order).limit(limit)
    return [TaskRecord.of(row) for row in conn.execute(stmt).mappings()]


def purge_expired(conn: Connection, now: datetime) -> int:
    result = conn.execute(delete(tasks).where(tasks.c.expires_at <= now))
    return int(result.rowcount)
