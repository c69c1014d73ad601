"""The application factory: routes, middleware, the error table and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spyglass import background, request_ids
from spyglass.api import cache as cache_api
from spyglass.api import dashboard, render
from spyglass.api import deprecation as deprecation_api
from spyglass.api import extensions as extension_api
from spyglass.api import identity as identity_api
from spyglass.api import images as image_api
from spyglass.api import locations as location_api
from spyglass.api import member_extensions as member_extension_api
from spyglass.api import members as member_api
from spyglass.api import metadefs as metadef_api
from spyglass.api import stores as store_api
from spyglass.api import tasks as task_api
from spyglass.api import trust as trust_api
from spyglass.api import webhooks as webhook_api
from spyglass.api.dashboard import logins as dashboard_logins
from spyglass.api.errors import HANDLERS
from spyglass.api.request_guard import RequestGuardMiddleware
from spyglass.audit import events, notifications, outbox
from spyglass.blobs import BlobStore
from spyglass.blobs.registry import StoreSet, build
from spyglass.context import Authenticator
from spyglass.data.cache import ImageCache
from spyglass.db.engine import Database
from spyglass.identity import directory as identity_directory
from spyglass.identity.authn import EmbeddedAuthenticator
from spyglass.identity.keystone import KeystoneAuthenticator, KeystoneUnavailable, service_session
from spyglass.identity.keystone_directory import NO_PROJECT_READ, KeystoneDirectory
from spyglass.identity.passwords import CheckSlots
from spyglass.images.policy import use_policy_file
from spyglass.request_ids import RequestIds
from spyglass.secret_box import SecretBox
from spyglass.settings import Settings
from spyglass.sharing import domain_shares, members, project_events, trust
from spyglass.web import AppState, AuthenticationMiddleware

Endpoint = Callable[[Request], Awaitable[Response]]

log = logging.getLogger(__name__)


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


def connect_project_lifecycle() -> None:
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


def _keystone(settings: Settings) -> tuple[KeystoneAuthenticator, KeystoneDirectory] | None:
    """With identity = "keystone": the token validator and the project reader, sharing one session."""
    if settings.identity != "keystone":
        return None
    options = settings.keystone_authtoken
    directory = KeystoneDirectory(service_session(options, system_scope=True), options.auth_url)
    return KeystoneAuthenticator(options, service_session(options)), directory


def _warn_if_projects_unreadable(settings: Settings, directory: KeystoneDirectory) -> None:
    """validate_member_ids asks Keystone for each new member's project: say at start-up when the
    service user may not, rather than let every share fail later without a word."""
    if not settings.validate_member_ids:
        return
    try:
        readable = directory.can_read_projects()
    except KeystoneUnavailable as exc:
        log.warning(
            "Keystone cannot be reached at start-up (%s); member ids are checked once it is", exc.detail
        )
        return
    if not readable:
        log.warning(
            "%s. Until then every new image member is refused with 503 (validate_member_ids is on).",
            NO_PROJECT_READ,
        )


def _keystone_listener(
    settings: Settings, db: Database, keystone: tuple[KeystoneAuthenticator, KeystoneDirectory] | None
) -> project_events.Listener | None:
    """With identity = "keystone" and a bus: Keystone's project notifications, read in the background."""
    if keystone is None or not settings.keystone_listener_url:
        return None
    listener = project_events.Listener(db, keystone[1], settings)
    listener.start()
    return listener


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
    connect_project_lifecycle()
    use_policy_file(settings.policy_path)
    database = db or Database(settings.database, connections=settings.database_connections)
    keystone = _keystone(settings)
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
    cache_dir = settings.image_cache_path
    image_cache = ImageCache(cache_dir, settings.image_cache_max_size) if cache_dir is not None else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if keystone is not None:
            await run_in_threadpool(_warn_if_projects_unreadable, settings, keystone[1])
        # Every blocking call (run_in_threadpool, to_thread) takes one of these threads; the
        # database pool holds as many connections, so none is opened and closed under load.
        to_thread.current_default_thread_limiter().total_tokens = settings.threads
        schedule = background.start(database, store_set, settings, image_cache)
        listener = _keystone_listener(settings, database, keystone)
        yield
        if listener is not None:
            await run_in_threadpool(listener.stop)
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
        *cache_api.routes,
        *metadef_api.routes,
    ]
    # With an external Keystone, its API is the only identity API: /identity is not served.
    embedded = settings.identity == "embedded"
    routes = [
        # The bare prefixes answer directly instead of redirecting to a trailing slash: clients
        # start their version discovery there.
        *([Route("/identity", _under("/identity", identity_api.versions), methods=["GET"])] * embedded),
        Route("/image", _under("/image", image_api.versions_root), methods=["GET"]),
        # The dashboard logs in through whichever identity is configured (spyglass.api.dashboard.logins).
        *(dashboard.routes if settings.dashboard else []),
        *([Mount("/identity", routes=identity_api.routes)] * embedded),
        Mount("/image", app=Router(image_routes, redirect_slashes=False)),
        # Glance clients configured with a bare endpoint (http://host:9292) find the API at the root.
        *image_routes,
    ]
    app = Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    # As Glance: a path with a trailing slash or an empty id (GET or DELETE /v2/images/,
    # /v2/images/{id}/members/) names no resource and is 404, not a redirect to another route.
    app.router.redirect_slashes = False
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
        image_cache=image_cache,
        keystone=keystone[1] if keystone is not None else None,
    )
    # The dashboard's session establishes its caller with the same authenticator as the API.
    app.state.authenticator = authenticator or (keystone[0] if keystone else EmbeddedAuthenticator(database))
    app.state.dashboard_logins = dashboard_logins.for_settings(settings, app.state.authenticator)
    app.add_middleware(AuthenticationMiddleware, authenticator=app.state.authenticator)
    # Added first, so it runs inside RequestIdMiddleware: a 431 carries a request id too.
    app.add_middleware(RequestGuardMiddleware, settings=settings)
    app.add_middleware(RequestIdMiddleware)
    return app
