"""Helpers every handler uses: the application's state, the caller (authenticated once per request
by AuthenticationMiddleware), JSON bodies, JSON responses, URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.api.render import StoreRendering
from spyglass.blobs.registry import StoreSet
from spyglass.context import Authenticator, RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Invalid, TooLarge, Unauthorized
from spyglass.settings import Settings

# Where AuthenticationMiddleware leaves the caller, in the request's state.
_CALLER = "spyglass.caller"


@dataclass(frozen=True)
class AppState:
    """What create_app wires once and every handler reads."""

    settings: Settings
    db: Database
    stores: StoreSet
    store_rendering: StoreRendering


def app_state(request: Request) -> AppState:
    wired: AppState = request.app.state.spyglass
    return wired


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class AuthenticationMiddleware:
    """Authenticates every request that carries X-Auth-Token, once, before routing.

    A bad token is not refused here: the routes that need no token (version discovery, getting a
    token) answer whatever the header says; `caller` refuses it where a caller is needed."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = Headers(scope=scope).get("x-auth-token")
            if token:
                await self._authenticate(scope, token)
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope, token: str) -> None:
        try:
            ctx = await run_in_threadpool(self.authenticator.authenticate, token)
        except Unauthorized:
            return
        scope.setdefault("state", {})[_CALLER] = ctx


def caller(request: Request) -> RequestContext:
    """The authenticated caller; 401 when the request carried no valid X-Auth-Token."""
    ctx = request.scope.get("state", {}).get(_CALLER)
    if not isinstance(ctx, RequestContext):
        raise Unauthorized("The request you have made requires authentication.")
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
    configured = app_state(request).settings.public_url
    root: str = request.scope.get("root_path", "")
    if configured:
        return configured.rstrip("/") + root
    return f"{request.url.scheme}://{request.url.netloc}{root}"
