"""Identity API v3 handlers for discovery and tokens (mounted under /identity).

The administrative resources (domains, projects, users, roles, assignments) are in admin_api.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.api.identity_admin import BODY_MAX
from spyglass.api.identity_admin import routes as admin_routes
from spyglass.api.identity_limits import routes as limit_routes
from spyglass.errors import NotFound, Unauthorized
from spyglass.identity import token_info, tokens
from spyglass.identity.policy import Action, Target, authorize
from spyglass.identity.throttle import Attempt, LoginLimits
from spyglass.web import JSONResponse, app_state, base_url, caller, json_body

VERSION_ID = "v3.14"
VERSION_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
VARY = {"Vary": "X-Auth-Token"}


def _version(request: Request) -> dict[str, Any]:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": f"{base_url(request)}/v3/"}],
        "media-types": MEDIA_TYPES,
    }


async def versions(request: Request) -> Response:
    return JSONResponse({"versions": {"values": [_version(request)]}}, status_code=300)


async def version(request: Request) -> Response:
    return JSONResponse({"version": _version(request)}, headers=VARY)


def _catalog(request: Request) -> list[dict[str, Any]]:
    settings = app_state(request).settings
    public = (
        settings.public_url.rstrip("/")
        if settings.public_url
        else f"{request.url.scheme}://{request.url.netloc}"
    )
    return token_info.build_catalog(public, settings.region)


def login_attempt(request: Request) -> Attempt:
    settings = app_state(request).settings
    limits = LoginLimits(
        window_seconds=settings.login_failure_window_seconds,
        per_user_address=settings.login_failures_per_user_address,
        per_address=settings.login_failures_per_address,
    )
    return Attempt(address=request.client.host if request.client else "unknown", limits=limits)


async def issue(request: Request) -> Response:
    body = await json_body(request, at_most=BODY_MAX)
    state = app_state(request)
    # A password check waits for a slot here, on the event loop, holding no pool thread.
    slot = state.password_checks.slot() if tokens.uses_password(body) else nullcontext()
    async with slot:
        secret, info = await run_in_threadpool(
            tokens.issue_token, state.db, body, state.settings.token_ttl_seconds, login_attempt(request)
        )
    nocatalog = "nocatalog" in request.query_params
    rendered = token_info.render_token(info, None if nocatalog else _catalog(request))
    return JSONResponse(rendered, status_code=201, headers={"X-Subject-Token": secret, **VARY})


async def _subject(request: Request, action: Action) -> token_info.TokenInfo:
    ctx = caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise NotFound("X-Subject-Token is missing.")
    try:
        info = await run_in_threadpool(token_info.validate_token, app_state(request).db, subject)
    except NotFound as exc:
        raise NotFound(f"Could not find token: {subject[:8]}...") from exc
    authorize(ctx, action, Target(user_id=info.user["id"]))
    return info


async def validate(request: Request) -> Response:
    info = await _subject(request, Action.VALIDATE_TOKEN)
    nocatalog = "nocatalog" in request.query_params
    rendered = token_info.render_token(info, None if nocatalog else _catalog(request))
    return JSONResponse(rendered, headers={"X-Subject-Token": request.headers["x-subject-token"], **VARY})


async def check(request: Request) -> Response:
    await _subject(request, Action.CHECK_TOKEN)
    return Response(status_code=200, headers=VARY)


async def revoke(request: Request) -> Response:
    await _subject(request, Action.REVOKE_TOKEN)
    await run_in_threadpool(
        token_info.revoke_token, app_state(request).db, request.headers["x-subject-token"]
    )
    return Response(status_code=204)


async def catalog(request: Request) -> Response:
    ctx = caller(request)
    if ctx.project_id is None and ctx.domain_id is None:
        raise Unauthorized("The service catalog is only available to scoped tokens.")
    return JSONResponse({"catalog": _catalog(request), "links": {"self": str(request.url)}}, headers=VARY)


routes = [
    Route("/", versions, methods=["GET"]),
    Route("/v3", version, methods=["GET"]),
    Route("/v3/", version, methods=["GET"]),
    Route("/v3/auth/tokens", issue, methods=["POST"]),
    # HEAD first: a GET route would also answer HEAD.
    Route("/v3/auth/tokens", check, methods=["HEAD"]),
    Route("/v3/auth/tokens", validate, methods=["GET"]),
    Route("/v3/auth/tokens", revoke, methods=["DELETE"]),
    Route("/v3/auth/catalog", catalog, methods=["GET"]),
    *admin_routes,
    *limit_routes,
]
