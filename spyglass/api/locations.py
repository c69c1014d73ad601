"""The v2.17 locations API handlers: `GET` and `POST /v2/images/{image_id}/locations`."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.data import location_import
from spyglass.web import JSONResponse, app_state, caller, json_body


async def index(request: Request) -> Response:
    state = app_state(request)
    found = await run_in_threadpool(
        location_import.locations_of, state.db, state.stores, caller(request), request.path_params["image_id"]
    )
    return JSONResponse(found)


async def add(request: Request) -> Response:
    ctx = caller(request)
    state = app_state(request)
    body = await json_body(request)
    image_id = request.path_params["image_id"]
    job = await run_in_threadpool(
        location_import.add, state.db, state.stores, ctx, image_id, body, state.settings
    )
    if job is not None:
        location_import.start(job, state.db, state.stores)
    return Response(status_code=202)


routes = [
    Route("/v2/images/{image_id}/locations", index, methods=["GET"]),
    Route("/v2/images/{image_id}/locations", add, methods=["POST"]),
]
