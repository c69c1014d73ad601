"""Handlers of trusted owners (/v2/shared-images/auto-accept) and of leaving a share
(POST /v2/images/{id}/members/{member}/actions/leave): spyglass.sharing.trust and .leaving."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.sharing import leaving, trust
from spyglass.web import JSONResponse, app_state, call, caller, json_body


async def create(request: Request) -> Response:
    ctx = caller(request)
    body = await json_body(request)
    row = await run_in_threadpool(trust.add_rule, app_state(request).db, ctx, body)
    return JSONResponse(row, status_code=201)


async def index(request: Request) -> Response:
    rows = await call(request, trust.list_rules)
    return JSONResponse({"rules": rows})


async def delete(request: Request) -> Response:
    await call(request, trust.delete_rule, request.path_params["rule_id"])
    return Response(status_code=204)


async def leave(request: Request) -> Response:
    p = request.path_params
    await call(request, leaving.leave_image, p["image_id"], p["member_id"])
    return Response(status_code=204)


routes = [
    Route("/v2/shared-images/auto-accept", index, methods=["GET"]),
    Route("/v2/shared-images/auto-accept", create, methods=["POST"]),
    Route("/v2/shared-images/auto-accept/{rule_id}", delete, methods=["DELETE"]),
    Route("/v2/images/{image_id}/members/{member_id}/actions/leave", leave, methods=["POST"]),
]
