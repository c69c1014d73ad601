"""Images API v2 handlers for image members (sharing)."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.api import quotas, render
from spyglass.api.extensions import safeguards
from spyglass.context import RequestContext
from spyglass.images import rates
from spyglass.sharing import members, project_sync
from spyglass.sharing.queries import MemberRow
from spyglass.web import JSONResponse, app_state, call, caller, json_body


async def create(request: Request) -> Response:
    ctx = caller(request)
    await quotas.admit(request, rates.MEMBER_ADDS)
    body = await json_body(request)
    row = await add(request, ctx, request.path_params["image_id"], body)
    # Glance answers 200, not 201, to a new member.
    return JSONResponse(render.member(row))


async def add(request: Request, ctx: RequestContext, image_id: str, body: object) -> MemberRow:
    """POST /members once the rate is admitted: the member's project refreshed from an external
    Keystone, then the service function with the deployment's quota and validation. (The
    dashboard's share form calls `refresh_from_keystone`, then members.share_and_add_member.)"""
    settings = app_state(request).settings
    await _refresh_from_keystone(request, body)
    return await run_in_threadpool(
        members.add_member,
        app_state(request).db,
        ctx,
        image_id,
        body,
        quota=settings.image_member_quota,
        validate=settings.validate_member_ids,
    )


async def _refresh_from_keystone(request: Request, body: object) -> None:
    member = body.get("member") if isinstance(body, dict) else None
    await refresh_from_keystone(request, [member])


async def refresh_from_keystone(request: Request, candidates: Sequence[object]) -> None:
    """With an external Keystone, new members' projects are read from it before they are checked
    (each on its own; what cannot be a project id is not asked about)."""
    state = app_state(request)
    if state.keystone is None or not state.settings.validate_member_ids:
        return
    project_ids = [c for c in candidates if project_sync.is_project_id(c)]
    if project_ids:
        await run_in_threadpool(project_sync.refresh_projects, state.db, state.keystone, project_ids)


async def index(request: Request) -> Response:
    rows = await call(request, members.list_members, request.path_params["image_id"])
    return JSONResponse({"members": [render.member(r) for r in rows], "schema": "/v2/schemas/members"})


async def show(request: Request) -> Response:
    p = request.path_params
    row = await call(request, members.get_member, p["image_id"], p["member_id"])
    return JSONResponse(render.member(row))


async def update(request: Request) -> Response:
    ctx = caller(request)
    body = await json_body(request)
    p = request.path_params
    row = await run_in_threadpool(
        members.update_member, app_state(request).db, ctx, p["image_id"], p["member_id"], body
    )
    return JSONResponse(render.member(row))


async def delete(request: Request) -> Response:
    p = request.path_params
    await call(request, members.delete_member, p["image_id"], p["member_id"], safeguards(request))
    return Response(status_code=204)


routes = [
    Route("/v2/images/{image_id}/members", index, methods=["GET"]),
    Route("/v2/images/{image_id}/members", create, methods=["POST"]),
    Route("/v2/images/{image_id}/members/{member_id}", show, methods=["GET"]),
    Route("/v2/images/{image_id}/members/{member_id}", update, methods=["PUT"]),
    Route("/v2/images/{image_id}/members/{member_id}", delete, methods=["DELETE"]),
]
