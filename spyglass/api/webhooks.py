"""Handlers of the webhook registration endpoints (spyglass.webhooks): /v2/webhooks."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.egress import AddressPolicy
from spyglass.sharing import webhooks
from spyglass.web import JSONResponse, app_state, call, caller, json_body


async def create(request: Request) -> Response:
    ctx = caller(request)
    body = await json_body(request)
    state = app_state(request)
    policy = AddressPolicy.of(state.settings)
    row = await run_in_threadpool(webhooks.create_webhook, state.db, ctx, body, state.secret_box, policy)
    return JSONResponse(row, status_code=201)


async def index(request: Request) -> Response:
    rows = await call(request, webhooks.list_webhooks)
    return JSONResponse({"webhooks": rows})


async def delete(request: Request) -> Response:
    await call(request, webhooks.delete_webhook, request.path_params["webhook_id"])
    return Response(status_code=204)


async def deliveries(request: Request) -> Response:
    rows = await call(request, webhooks.list_deliveries, request.path_params["webhook_id"])
    return JSONResponse({"deliveries": rows})


routes = [
    Route("/v2/webhooks", index, methods=["GET"]),
    Route("/v2/webhooks", create, methods=["POST"]),
    Route("/v2/webhooks/{webhook_id}", delete, methods=["DELETE"]),
    Route("/v2/webhooks/{webhook_id}/deliveries", deliveries, methods=["GET"]),
]
