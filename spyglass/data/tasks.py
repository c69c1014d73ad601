"""Glance's tasks: a record of each image import and of each task of the tasks API.

An import (glance-direct, web-download, copy-image; spyglass.data.imports) is a task of type
`api_image_import` whose id is the image's `os_glance_import_task`; a task of the tasks API
(`POST /v2/tasks`, spyglass.data.task_imports) has type `import`. Either moves once through
`pending` -> `processing` -> `success` | `failure` (with a message), and when it ends it gets an
`expires_at` (`task_time_to_live` hours later), after which no one sees it and the background
purge deletes it.

Who reads what, as in Glance 33: the tasks API (`GET /v2/tasks`, `GET /v2/tasks/{id}`) is behind
`tasks_api_access` (admin-only by default), and a project sees its own tasks (an admin every
project's). `GET /v2/images/{id}/tasks` needs only that the caller can see the image, and lists
the image's tasks of the caller's project (an admin's: all of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import notifications
from spyglass.context import RequestContext
from spyglass.data import task_queries as tq
from spyglass.data.task_queries import FAILURE, PENDING, PROCESSING, SUCCESS, TaskRecord
from spyglass.db.engine import Database
from spyglass.errors import Invalid, NotFound
from spyglass.images.catalog import is_uuid, load_authorized
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.settings import Settings
from spyglass.timeutil import isotime, utcnow

API_IMAGE_IMPORT = "api_image_import"
IMPORT = "import"
DEFAULT_TIME_TO_LIVE = timedelta(hours=48)
INTERRUPTED = "The server stopped while the task was running."


def time_to_live(settings: Settings) -> timedelta:
    return timedelta(hours=settings.task_time_to_live)


# ---- the life of a task -----------------------------------------------------------------------------


def record(
    conn: Connection,
    ctx: RequestContext,
    task_id: str,
    task_type: str,
    task_input: dict[str, Any],
    *,
    image_id: str | None = None,
    request_id: str | None = None,
) -> None:
    """Record a new pending task, in the caller's transaction (the one that starts the work)."""
    now = utcnow()
    row = {
        "id": task_id,
        "type": task_type,
        "status": PENDING,
        "owner": ctx.project_id,
        "image_id": image_id,
        "request_id": request_id,
        "user_id": ctx.user_id,
        "input": task_input,
        "result": None,
        "message": "",
        "created_at": now,
        "updated_at": now,
        "expires_at": None,
    }
    tq.insert_task(conn, row)
    _announce(conn, task_id, "task.create")


def begin_processing(db: Database, task_id: str) -> None:
    with db.write() as conn:
        if tq.change_status(conn, task_id, [PENDING], status=PROCESSING, now=utcnow()):
            _announce(conn, task_id, "task.run", "task.processing")


def end(
    db: Database, task_id: str, failure: str | None, result: dict[str, Any] | None, ttl: timedelta
) -> None:
    """End the task: `failure` is the message of a failed task, None for a success with `result`."""
    now = utcnow()
    with db.write() as conn:
        if failure is None:
            values: dict[str, Any] = {"status": SUCCESS, "result": result}
        else:
            values = {"status": FAILURE, "message": failure}
        if tq.change_status(conn, task_id, tq.UNFINISHED, now=now, expires_at=now + ttl, **values):
            _announce(conn, task_id, "task.success" if failure is None else "task.failure")


def notification(task: TaskRecord) -> dict[str, Any]:
    """Glance's format_task_notification: never the input (it may hold credentials), nor the
    result and message."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "result": None,
        "owner": task.owner,
        "message": None,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


def _announce(conn: Connection, task_id: str, *event_types: str) -> None:
    if not notifications.enabled(conn):
        return
    task = tq.fetch_task(conn, task_id, utcnow())
    if task is not None:
        notifications.emit_many(conn, [(kind, notification(task)) for kind in event_types])


def attach_image(db: Database, task_id: str, image_id: str) -> None:
    with db.write() as conn:
        tq.set_image(conn, task_id, image_id, utcnow())


def end_interrupted(conn: Connection, ttl: timedelta = DEFAULT_TIME_TO_LIVE) -> int:
    """Start-up recovery: the tasks a stopped server was running end in failure."""
    now = utcnow()
    return tq.end_unfinished(conn, INTERRUPTED, now, now + ttl)


def purge_expired(db: Database) -> int:
    """Delete the tasks whose expires_at has passed (the background schedule runs this)."""
    with db.write() as conn:
        return tq.purge_expired(conn, utcnow())


# ---- reading tasks ---------------------------------------------------------------------------------


def _owner_seen(ctx: RequestContext) -> str | None:
    """The project whose tasks the caller sees; None: every project's."""
    return None if permits(ctx, Action.GET_ALL_TASKS, Target()) else ctx.project_id


def check_api_access(db: Database, ctx: RequestContext) -> None:
    authorize(ctx, Action.TASKS_API_ACCESS)


def get_task(db: Database, ctx: RequestContext, task_id: str) -> TaskRecord:
    authorize(ctx, Action.TASKS_API_ACCESS)
    authorize(ctx, Action.GET_TASK)
    with db.read() as conn:
        found = tq.fetch_task(conn, task_id, utcnow()) if isinstance(task_id, str) else None
    owner = _owner_seen(ctx)
    # Another project's task is as absent as one that does not exist.
    if found is None or (owner is not None and found.owner != owner):
        raise NotFound(f"Task with the given id {task_id} was not found")
    return found


def image_tasks(db: Database, ctx: RequestContext, image_id: str) -> list[TaskRecord]:
    """The tasks of an image the caller can see (NotFound otherwise)."""
    with db.read() as conn:
        load_authorized(conn, ctx, image_id, Action.GET_IMAGE)
        return tq.of_image(conn, image_id, _owner_seen(ctx), utcnow())


@dataclass(frozen=True)
class TaskQuery:
    """GET /v2/tasks: Glance's filters, sort and pagination."""

    filters: dict[str, str]
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    marker: str | None = None
    limit: int = 25

    @classmethod
    def parse(cls, params: Mapping[str, str], settings: Settings) -> TaskQuery:
        """The query string, checked with Glance's messages; unknown parameters are ignored."""
        sort_dir = params.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise Invalid(f"Invalid sort direction: {sort_dir}")
        sort_key = params.get("sort_key", "created_at")
        if sort_key not in tq.SORT_KEYS:
            raise Invalid("Sort key supplied was not valid.")
        status, kind = params.get("status"), params.get("type")
        if status and status not in tq.STATUSES:
            raise Invalid(f"Invalid status value: {status}")
        # Glance 33 lets a list filter on the type `import` only.
        if kind and kind != IMPORT:
            raise Invalid(f"Invalid type value: {kind}")
        marker = params.get("marker")
        if marker is not None and marker and not is_uuid(marker.lower()):
            raise Invalid("Invalid marker format")
        filters = {k: params[k] for k in tq.COLUMNS if params.get(k)}
        return cls(filters, sort_key, sort_dir, marker or None, _limit(params.get("limit"), settings))


def _limit(raw: str | None, settings: Settings) -> int:
    if raw is None:
        return settings.limit_param_default
    try:
        limit = int(raw)
    except ValueError as exc:
        raise Invalid("limit param must be an integer") from exc
    if limit < 0:
        raise Invalid("limit param must be positive")
    return min(limit, settings.api_limit_max)


def list_tasks(db: Database, ctx: RequestContext, query: TaskQuery) -> tuple[list[TaskRecord], bool]:
    """One page of the tasks the caller may see; True when the page is full (there may be more)."""
    authorize(ctx, Action.TASKS_API_ACCESS)
    authorize(ctx, Action.GET_TASKS)
    owner = _owner_seen(ctx)
    now = utcnow()
    with db.read() as conn:
        marker = None
        if query.marker is not None:
            marker = tq.fetch_task(conn, query.marker, now)
            if marker is None or (owner is not None and marker.owner != owner):
                raise Invalid(f"Task with the given id {query.marker} was not found")
        found = tq.page(conn, owner, query.filters, query.sort_key, query.sort_dir, marker, query.limit, now)
    return found, bool(found) and len(found) == query.limit
