"""Images API extensions for safe sharing (README "Making sharing safe", docs/openapi.yaml).

New endpoints in Glance's style; the Glance endpoints' answers are unchanged. Webhook endpoints
are in spyglass.api.webhooks.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.api import quotas, render
from spyglass.errors import Invalid
from spyglass.images import history as audit
from spyglass.images import project_copy as copies
from spyglass.images import recycle_bin
from spyglass.images.impact import OVERRIDE_HEADER, Safeguards, is_true
from spyglass.sharing import invitations, usage
from spyglass.web import JSONResponse, app_state, base_url, call, caller, optional_json_body

# The copy action takes at most {"name": ...}.
OPTIONAL_BODY_MAX = 64 * 1024
LARGEST_ID = 2**63 - 1


def safeguards(request: Request) -> Safeguards:
    """The deployment's sharing-safety settings with this request's override header."""
    override = is_true(request.headers.get(OVERRIDE_HEADER))
    return Safeguards.from_settings(app_state(request).settings, override=override)


def _image(request: Request, record: Any) -> dict[str, Any]:
    return render.image(record, app_state(request).store_rendering)


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # isascii: str.isdigit also accepts digits such as "²" that int() refuses. Any event id the
    # API hands out fits: the largest a 64-bit id column (SQLite's rowid) can hold.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > LARGEST_ID:
        raise Invalid(f"{name} must be an integer from 0 to {LARGEST_ID}.")
    return int(raw)


async def events(request: Request) -> Response:
    ctx = caller(request)
    marker = _int_param(request, "marker", None)
    limit = _int_param(request, "limit", audit.DEFAULT_LIMIT) or 0
    image_id = request.path_params["image_id"]
    rows = await run_in_threadpool(
        audit.list_events, app_state(request).db, ctx, image_id, marker=marker, limit=limit
    )
    body: dict[str, Any] = {"events": rows}
    if len(rows) == limit:
        body["next"] = f"/v2/images/{image_id}/events?limit={limit}&marker={rows[-1]['id']}"
    return JSONResponse(body)


async def image_usage(request: Request) -> Response:
    rows = await call(request, usage.list_usage, request.path_params["image_id"])
    return JSONResponse({"usage": rows})


async def copy(request: Request) -> Response:
    ctx = caller(request)
    body = await optional_json_body(request, at_most=OPTIONAL_BODY_MAX)
    state = app_state(request)
    image_id = request.path_params["image_id"]
    record = await run_in_threadpool(
        copies.copy_image, state.db, ctx, image_id, body, state.stores.default.name, quotas.rules(request)
    )
    headers = {"Location": f"{base_url(request)}/v2/images/{record.id}"}
    return JSONResponse(_image(request, record), status_code=201, headers=headers)


async def restore(request: Request) -> Response:
    bin_on = app_state(request).settings.recycle_retention_days > 0
    record = await call(request, recycle_bin.restore_image, request.path_params["image_id"], bin_on)
    return JSONResponse(_image(request, record))


async def invitations_index(request: Request) -> Response:
    status = request.query_params.get("status", "pending")
    warning_days = app_state(request).settings.member_expiry_warning_days
    rows = await call(request, invitations.list_invitations, status, warning_days)
    return JSONResponse({"invitations": rows})


async def bin_index(request: Request) -> Response:
    rows = await call(request, recycle_bin.list_bin)
    return JSONResponse({"images": rows})


routes = [
    Route("/v2/images/{image_id}/events", events, methods=["GET"]),
    Route("/v2/images/{image_id}/usage", image_usage, methods=["GET"]),
    Route("/v2/images/{image_id}/actions/copy", copy, methods=["POST"]),
    Route("/v2/images/{image_id}/actions/restore", restore, methods=["POST"]),
    Route("/v2/shared-images/invitations", invitations_index, methods=["GET"]),
    Route("/v2/recycle-bin", bin_index, methods=["GET"]),
]
