"""Helpers every handler uses: the caller's context, JSON bodies, JSON responses, URLs."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from spyglass.context import RequestContext
from spyglass.errors import Invalid, TooLarge, Unauthorized
from spyglass.identity.tokens import authenticate_request


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def caller(request: Request) -> RequestContext:
    """The authenticated caller, from X-Auth-Token."""
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    ctx: RequestContext = await run_in_threadpool(authenticate_request, request.app.state.db, token)
    return ctx


async def json_body(request: Request, *, max_bytes: int = 1024 * 1024) -> Any:
    raw = await request.body()
    if len(raw) > max_bytes:
        raise TooLarge(f"The request body is larger than {max_bytes} bytes.")
    if not raw:
        raise Invalid("The request body is empty; a JSON document was expected.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"Malformed JSON in request body: {exc}") from exc


def base_url(request: Request) -> str:
    """The external URL of the mounted API (for example http://host:9292/image)."""
    configured: str = request.app.state.settings.public_url
    root: str = request.scope.get("root_path", "")
    if configured:
        return configured.rstrip("/") + root
    return f"{request.url.scheme}://{request.url.netloc}{root}"
