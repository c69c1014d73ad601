"""Handlers of the member extensions: shares in bulk and shares that end on a date
(README "Making sharing safe", docs/openapi.yaml)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.api import quotas, render
from spyglass.api.errors import status_of
from spyglass.api.extensions import safeguards
from spyglass.api.members import refresh_from_keystone
from spyglass.images import rates
from spyglass.sharing import bulk, expiry
from spyglass.web import JSONResponse, app_state, caller, json_body

# What each action answers for one pair as a single call.
DONE = {"add": 200, "remove": 204}
# An atomic call that a pair failed changed nothing: a conflict, with every pair's result.
ATOMIC_FAILED = 409


async def share_in_bulk(request: Request) -> Response:
    ctx = caller(request)
    body = await json_body(request)
    state = app_state(request)
    # What costs nothing comes first: the caller's right, the body (its size in pairs), the rate.
    checked = bulk.checked(ctx, body)
    if checked.action == "add":
        await quotas.admit(request, rates.MEMBER_ADDS)
        if state.keystone is not None and state.settings.validate_member_ids:
            # As for a single new member: each project as Keystone has it now, not as last copied;
            # only the new members of images the caller may add members to.
            new = await run_in_threadpool(bulk.new_members, state.db, ctx, checked)
            await refresh_from_keystone(request, new)
    outcome = await run_in_threadpool(
        bulk.share_in_bulk,
        state.db,
        ctx,
        body,
        quota=state.settings.image_member_quota,
        validate=state.settings.validate_member_ids,
        guard=safeguards(request),
    )
    document = {
        "action": outcome.request.action,
        "atomic": outcome.request.atomic,
        "applied": outcome.applied,
        "results": [_result(r, outcome) for r in outcome.results],
    }
    return JSONResponse(document, status_code=200 if outcome.applied else ATOMIC_FAILED)


def _result(result: bulk.PairResult, outcome: bulk.BulkOutcome) -> dict[str, Any]:
    status: int | str = DONE[outcome.request.action]
    error = None
    if result.error is not None:
        status, error = status_of(result.error), result.error.message
    elif not outcome.applied:
        status, error = bulk.NOT_APPLIED, "Not applied: another pair failed in this atomic call."
    return {"image_id": result.image_id, "member_id": result.member_id, "status": status, "error": error}


async def set_expiry(request: Request) -> Response:
    ctx = caller(request)
    body = await json_body(request)
    p = request.path_params
    row = await run_in_threadpool(
        expiry.set_member_expiry, app_state(request).db, ctx, p["image_id"], p["member_id"], body
    )
    return JSONResponse(render.member(row))


routes = [
    Route("/v2/shared-images/bulk", share_in_bulk, methods=["POST"]),
    Route("/v2/images/{image_id}/members/{member_id}/expiry", set_expiry, methods=["PUT"]),
]
