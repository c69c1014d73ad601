"""Helpers every handler uses: the application's state, the caller (authenticated once per request
by AuthenticationMiddleware), JSON bodies, JSON responses, URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.api.render import StoreRendering
from spyglass.blobs.registry import StoreSet
from spyglass.context import Authenticator, RememberingAuthenticator, RequestContext
from spyglass.data.cache import ImageCache
from spyglass.db.engine import Database
from spyglass.errors import Invalid, TooLarge, TryLater, Unauthorized
from spyglass.identity.keystone_directory import KeystoneDirectory
from spyglass.identity.passwords import CheckSlots
from spyglass.secret_box import SecretBox
from spyglass.settings import Settings

# Where AuthenticationMiddleware leaves the caller, in the request's state.
_CALLER = "spyglass.caller"
# ... or why the token could not be checked (an external identity service that did not answer).
_AUTH_ERROR = "spyglass.authentication_error"

T = TypeVar("T")


@dataclass(frozen=True)
class AppState:
    """What create_app wires once and every handler reads."""

    settings: Settings
    db: Database
    stores: StoreSet
    store_rendering: StoreRendering
    secret_box: SecretBox
    password_checks: CheckSlots
    # This node's cache of remote image data; None when the cache is off.
    image_cache: ImageCache | None = None
    # identity = "keystone": Keystone's projects (member id validation); None with the embedded one.
    keystone: KeystoneDirectory | None = None


def app_state(request: Request) -> AppState:
    wired: AppState = request.app.state.spyglass
    return wired


async def call(request: Request, service: Callable[..., T], *args: Any) -> T:
    """Run a service function in a worker thread, given the database and the authenticated caller."""
    return await run_in_threadpool(service, app_state(request).db, caller(request), *args)


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
        # A caller validated moments ago costs no thread hop and no statement.
        self.remembered = (
            authenticator.remembered if isinstance(authenticator, RememberingAuthenticator) else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            token = headers.get("x-auth-token")
            if token:
                await self._authenticate(scope, token, headers.get("x-service-token"))
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope, token: str, service_token: str | None) -> None:
        try:
            ctx = await self._caller(token, service_token)
        except TryLater as exc:
            # Raised by `caller`, inside the routes, so the error table answers it (503).
            scope.setdefault("state", {})[_AUTH_ERROR] = exc
            return
        if ctx is None:
            return
        if service_token:
            ctx = replace(ctx, service_roles=await self._service_roles(service_token))
        scope.setdefault("state", {})[_CALLER] = ctx

    async def _caller(self, token: str, service_token: str | None = None) -> RequestContext | None:
        """The caller of a token, or None when it is not valid now. With a service token, an
        authenticator that validates it (spyglass.identity.keystone) may accept an expired token."""
        ctx = self.remembered(token) if self.remembered is not None else None
        if ctx is None:
            try:
                if service_token:
                    ctx = await run_in_threadpool(self.authenticator.authenticate, token, service_token)
                else:
                    ctx = await run_in_threadpool(self.authenticator.authenticate, token)
            except Unauthorized:
                return None
        return ctx

    async def _service_roles(self, token: str) -> frozenset[str]:
        # As keystonemiddleware with delay_auth_decision: a bad service token only adds no roles.
        try:
            service = await self._caller(token)
        except TryLater:
            return frozenset()
        return frozenset() if service is None else service.roles


def act_as(request: Request, ctx: RequestContext) -> None:
    """Make `ctx` the request's caller, as if it had come with a token for it (the dashboard's
    session hands its caller to the API's own handlers this way)."""
    request.scope.setdefault("state", {})[_CALLER] = ctx


def caller(request: Request) -> RequestContext:
    """The authenticated caller; 401 when the request carried no valid X-Auth-Token."""
    state = request.scope.get("state", {})
    ctx = state.get(_CALLER)
    if not isinstance(ctx, RequestContext):
        if isinstance(state.get(_AUTH_ERROR), TryLater):
            raise state[_AUTH_ERROR]
        raise Unauthorized("The request you have made requires authentication.")
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
    limit: int = app_state(request).settings.max_request_body_bytes
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
    configured = app_state(request).settings.public_url
    root: str = request.scope.get("root_path", "")
    if configured:
        return configured.rstrip("/") + root
    return f"{request.url.scheme}://{request.url.netloc}{root}"
