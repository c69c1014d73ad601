"""Tasks handlers: the tasks API (`/v2/tasks`) and the import tasks of an image
(`GET /v2/images/{id}/tasks`, API 2.12), rendered as Glance 33 renders them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.api.imports import request_id
from spyglass.data import imports, task_imports, tasks
from spyglass.data.task_queries import TaskRecord
from spyglass.timeutil import isotime
from spyglass.web import JSONResponse, app_state, call, caller, json_body

TASKS_DELETE_REFUSED = (
    "This operation is currently not permitted on Glance Tasks. "
    "They are auto deleted after reaching the time based on their expires_at property."
)


def _stub(task: TaskRecord) -> dict[str, Any]:
    """A task in a list: no input, result or message (Glance's partial task schema)."""
    view: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }
    if task.expires_at is not None:
        view["expires_at"] = isotime(task.expires_at)
    return view


def _full(task: TaskRecord) -> dict[str, Any]:
    view = {**_stub(task), "input": task.input, "result": task.result, "message": task.message}
    for name in ("image_id", "request_id", "user_id"):
        if getattr(task, name):
            view[name] = getattr(task, name)
    return view


def _microseconds(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _of_image(task: TaskRecord) -> dict[str, Any]:
    """A task as `GET /v2/images/{id}/tasks` shows it: Glance's database row, timestamps with
    microseconds and no zone, and the soft-delete columns (a live task is never deleted)."""
    return {
        **task.columns(),
        "created_at": _microseconds(task.created_at),
        "updated_at": _microseconds(task.updated_at),
        "expires_at": _microseconds(task.expires_at),
        "deleted_at": None,
        "deleted": False,
    }


async def image_tasks(request: Request) -> Response:
    found = await call(request, tasks.image_tasks, request.path_params["image_id"])
    return JSONResponse({"tasks": [_of_image(t) for t in found]})


async def index(request: Request) -> Response:
    caller(request)
    query = tasks.TaskQuery.parse(request.query_params, app_state(request).settings)
    found, more = await call(request, tasks.list_tasks, query)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    body: dict[str, Any] = {
        "tasks": [_stub(t) for t in found],
        "first": "/v2/tasks" + (f"?{urlencode(params)}" if params else ""),
        "schema": "/v2/schemas/tasks",
    }
    if more:
        body["next"] = "/v2/tasks?" + urlencode([*params, ("marker", found[-1].id)])
    return JSONResponse(body)


async def show(request: Request) -> Response:
    found = await call(request, tasks.get_task, request.path_params["task_id"])
    return JSONResponse(_full(found))


async def create(request: Request) -> Response:
    ctx = caller(request)
    # Glance checks tasks_api_access before it reads the body.
    await call(request, tasks.check_api_access)
    body = await json_body(request)
    state = app_state(request)
    task = await call(request, task_imports.create_task, body, request_id(request))
    staging = imports.staging_store(state.settings)
    task_imports.start(task, ctx, task_imports.Server(state.db, state.stores, staging, state.settings))
    return JSONResponse(_full(task), status_code=201, headers={"Location": f"/v2/tasks/{task.id}"})


async def delete(request: Request) -> Response:
    """Tasks are never deleted by request: they go when they expire (Glance's 405)."""
    await call(request, tasks.check_api_access)
    return Response(TASKS_DELETE_REFUSED, status_code=405, headers={"Allow": "GET"}, media_type="text/plain")


routes = [
    Route("/v2/images/{image_id}/tasks", image_tasks, methods=["GET"]),
    Route("/v2/tasks", index, methods=["GET"]),
    Route("/v2/tasks", create, methods=["POST"]),
    Route("/v2/tasks/{task_id}", show, methods=["GET"]),
    Route("/v2/tasks/{task_id}", delete, methods=["DELETE"]),
]
