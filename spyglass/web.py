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


async def json_body(request: Request, *, at_most: int | None = None) -> Any:
    """The JSON document of the body; 413 past the deployment's limit (or `at_most`, if smaller)."""
    raw = await limited_body(request, at_most=at_most)
    if not raw:
        raise Invalid("The request body is empty; a JSON document was expected.")
    return _parse(raw)


async def optional_json_body(request: Request, *, at_most: int | None = None) -> Any:
    """As json_body, but None for an empty body."""
    raw = await limited_body(request, at_most=at_most)
    return _parse(raw) if raw.strip() else None


async def limited_body(request: Request, *, at_most: int | None = None) -> bytes:
    """The whole body, refused before reading when Content-Length is too large, and as soon as the
    stream crosses the limit otherwise (a chunked body): never more than the limit is held."""
    limit: int = request.app.state.settings.max_request_body_bytes
    if at_most is not None:
        limit = min(limit, at_most)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(_too_large(limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(_too_large(limit))
    return bytes(body)


def _too_large(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes for a JSON document."


def _parse(raw: bytes) -> Any:
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
