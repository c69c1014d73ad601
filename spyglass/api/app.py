"""The application factory: routes, middleware, the error table and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spyglass import background, request_ids
from spyglass.api import dashboard, render
from spyglass.api import deprecation as deprecation_api
from spyglass.api import extensions as extension_api
from spyglass.api import identity as identity_api
from spyglass.api import images as image_api
from spyglass.api import locations as location_api
from spyglass.api import member_extensions as member_extension_api
from spyglass.api import members as member_api
from spyglass.api import stores as store_api
from spyglass.api import tasks as task_api
from spyglass.api import trust as trust_api
from spyglass.api import webhooks as webhook_api
from spyglass.api.errors import HANDLERS
from spyglass.api.request_guard import RequestGuardMiddleware
from spyglass.audit import events, notifications, outbox
from spyglass.blobs import BlobStore
from spyglass.blobs.registry import StoreSet, build
from spyglass.context import Authenticator
from spyglass.db.engine import Database
from spyglass.identity import directory as identity_directory
from spyglass.identity.authn import EmbeddedAuthenticator
from spyglass.identity.passwords import CheckSlots
from spyglass.request_ids import RequestIds
from spyglass.secret_box import SecretBox
from spyglass.settings import Settings
from spyglass.sharing import domain_shares, members, trust
from spyglass.web import AppState, AuthenticationMiddleware

Endpoint = Callable[[Request], Awaitable[Response]]


class RequestIdMiddleware:
    """Every response carries x-openstack-request-id, as OpenStack services do: the caller's
    global id when it sent a well-formed one, else Spyglass's own (spyglass.request_ids). Both are
    on every log line of the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ids = RequestIds.of(Headers(scope=scope).get("x-openstack-request-id"))
        answered = ids.answered.encode()
        # The 500 handler runs outside this middleware; it finds the id here.
        scope.setdefault("state", {})["request_id"] = ids.answered

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-openstack-request-id", answered),
                ]
            await send(message)

        token = request_ids.current.set(ids)
        await self.app(scope, receive, send_with_id)
        # Left set when the request fails: the server logs the traceback after this middleware,
        # in the request's own task (a context of its own), and the line names the ids too.
        request_ids.current.reset(token)


def _connect_project_lifecycle() -> None:
    """The image side reacts when the identity side creates, deletes or disables a project."""
    for hooks, handler in (
        # The sharing-safety hooks first: they read the member rows that members' hook removes.
        (identity_directory.project_deleted_hooks, outbox.on_project_deleted),
        (identity_directory.project_deleted_hooks, events.on_project_deleted),
        (identity_directory.project_deleted_hooks, members.on_project_deleted),
        (identity_directory.project_deleted_hooks, trust.on_project_deleted),
        (identity_directory.project_disabled_hooks, members.on_project_disabled),
        (identity_directory.project_created_hooks, domain_shares.on_project_created),
    ):
        if handler not in hooks:
            hooks.append(handler)


def _under(prefix: str, endpoint: Endpoint) -> Endpoint:
    """An endpoint served at a mount's bare prefix, seeing the root path the mount would give it."""

    async def handler(request: Request) -> Response:
        request.scope["root_path"] = request.scope.get("root_path", "") + prefix
        return await endpoint(request)

    return handler


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    store: BlobStore | None = None,
    stores: StoreSet | None = None,
    authenticator: Authenticator | None = None,
) -> Starlette:
    """Wire a Spyglass application. The database must already be migrated (see spyglass.service).

    The blob stores are `stores`, or the one `store`, or else those the settings configure. Tokens
    are checked by `authenticator`, by default the embedded identity service's."""
    _connect_project_lifecycle()
    database = db or Database(settings.database)
    if settings.notifications_transport_url:
        # Changes queue Glance's notifications from now on; the background rounds send them.
        notifications.enable(database.engine)
    if stores is None:
        stores = (
            StoreSet.single(store)
            if store is not None
            else build(settings.store_specs, settings.default_store_name)
        )
    store_set = stores

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        schedule = background.start(database, store_set, settings)
        yield
        await schedule.stop()
        if db is None:
            database.dispose()

    image_routes = [
        *image_api.routes,
        *location_api.routes,
        *store_api.routes,
        *task_api.routes,
        *member_api.routes,
        *member_extension_api.routes,
        *extension_api.routes,
        *webhook_api.routes,
        *trust_api.routes,
        *deprecation_api.routes,
    ]
    routes = [
        # The bare prefixes answer directly instead of redirecting to a trailing slash: clients
        # start their version discovery there.
        Route("/identity", _under("/identity", identity_api.versions), methods=["GET"]),
        Route("/image", _under("/image", image_api.versions_root), methods=["GET"]),
        *(dashboard.routes if settings.dashboard else []),
        Mount("/identity", routes=identity_api.routes),
        Mount("/image", routes=image_routes),
        # Glance clients configured with a bare endpoint (http://host:9292) find the API at the root.
        *image_routes,
    ]
    app = Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.spyglass = AppState(
        settings=settings,
        db=database,
        stores=store_set,
        store_rendering=render.StoreRendering(
            store_set.default_name,
            url=lambda location: store_set.url(location.store, location.key),
            show_direct_url=settings.show_image_direct_url,
            show_locations=settings.show_multiple_locations,
        ),
        secret_box=SecretBox.of(settings),
        password_checks=CheckSlots(settings.password_checks_at_once, settings.password_check_queue),
    )
    # The dashboard's session establishes its caller with the same authenticator as the API.
    app.state.authenticator = authenticator or EmbeddedAuthenticator(database)
    app.add_middleware(AuthenticationMiddleware, authenticator=app.state.authenticator)
    # Added first, so it runs inside RequestIdMiddleware: a 431 carries a request id too.
    app.add_middleware(RequestGuardMiddleware, settings=settings)
    app.add_middleware(RequestIdMiddleware)
    return app
