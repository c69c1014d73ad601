"""One table maps domain errors to HTTP status codes, and one function renders error bodies.

The Images API answers like Glance: a JSON body `{"message", "code", "title"}` for clients that
accept JSON, a small HTML page otherwise. The Identity API, and any 401, answers like Keystone:
`{"error": {"code", "message", "title"}}` with `WWW-Authenticate: Keystone uri="..."`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from spyglass import errors
from spyglass.settings import Settings
from spyglass.web import app_state

STATUS: dict[type[errors.SpyglassError], int] = {
    errors.Invalid: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.TooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RangeNotSatisfiable: 416,
    errors.Throttled: 429,
    errors.RateLimited: 429,
    errors.Busy: 503,
    errors.Unavailable: 503,
}


def identity_uri(settings: Settings) -> str:
    """Where a client gets a token: the embedded identity API, or the external Keystone's."""
    if settings.identity == "keystone":
        return settings.keystone_authtoken.authenticate_uri
    return f"{settings.base_url}/identity"


def status_of(exc: errors.SpyglassError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def glance_text(message: str, detail: str = "", *, escape: bool = False) -> str:
    """The error text as Glance (webob) lays it out: message, two breaks, detail, an empty comment."""
    if escape:
        message, detail = html.escape(message), html.escape(detail)
    return f"{message}<br /><br />\n{detail}\n\n"


def media_type_text(message: str, detail: str, *, escape: bool = False) -> str:
    """Glance lays out the 415 of PATCH differently (see 55-patch-wrong-media-type.http)."""
    if escape:
        message, detail = html.escape(message), html.escape(detail)
    return f"{message}\n<br /><br />\n{detail}"


def error_response(
    request: Request,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    detail: str = "",
    layout: Callable[..., str] = glance_text,
) -> Response:
    headers = dict(headers or {})
    phrase = HTTPStatus(status).phrase
    if status == 401:
        headers["WWW-Authenticate"] = f'Keystone uri="{identity_uri(app_state(request).settings)}"'
    if status == 401 or request.url.path.startswith("/identity"):
        body = {"error": {"code": status, "message": message, "title": phrase}}
        return Response(json.dumps(body), status, headers, media_type="application/json")
    if "json" in request.headers.get("accept", ""):
        body2 = {"message": layout(message, detail), "code": f"{status} {phrase}", "title": phrase}
        return Response(json.dumps(body2), status, headers, media_type="application/json")
    page = (
        f"<html>\n <head>\n  <title>{status} {phrase}</title>\n </head>\n <body>\n"
        f"  <h1>{status} {phrase}</h1>\n  {layout(message, detail, escape=True)}\n </body>\n</html>"
    )
    return Response(page, status, headers, media_type="text/html")


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.SpyglassError)
    headers = {}
    if isinstance(exc, errors.UnsupportedMediaType) and exc.accept_patch:
        headers["Accept-Patch"] = exc.accept_patch
    if isinstance(exc, errors.RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, errors.TryLater):
        headers["Retry-After"] = str(exc.retry_after)
    patch_415 = isinstance(exc, errors.UnsupportedMediaType) and exc.accept_patch
    layout = media_type_text if patch_415 else glance_text
    return error_response(request, status_of(exc), exc.message, headers, detail=exc.detail, layout=layout)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        message = "The method is not allowed for the requested URL."
    elif exc.status_code == 404:
        message = "The resource could not be found."
    else:
        message = str(exc.detail)
    return error_response(request, exc.status_code, message, dict(exc.headers or {}))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette runs this handler outside every middleware, so the request id is added here.
    request_id = getattr(request.state, "request_id", None)
    return error_response(
        request,
        500,
        "The server has either erred or is incapable of performing the requested operation.",
        {"x-openstack-request-id": request_id} if request_id else None,
    )


async def on_client_gone(request: Request, exc: Exception) -> Response:
    # The client closed the connection mid-request (a cancelled upload): nobody reads this answer,
    # and it is not a server error, so it must not reach the 500 handler and its traceback log.
    return Response(status_code=400)


HANDLERS = {
    errors.SpyglassError: on_domain_error,
    HTTPException: on_http_error,
    ClientDisconnect: on_client_gone,
    Exception: on_unexpected,
}
