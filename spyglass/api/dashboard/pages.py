"""The dashboard's pages: the same service functions as the API, called as the logged-in user.

Reads render a page; every POST checks the CSRF token first and answers with a redirect (303), so
that reloading a page never repeats an action. Domain errors become a page with the API's message
and status (404 for an image the user cannot see, as the API)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from spyglass.api import images as image_api
from spyglass.api import members as member_api
from spyglass.api import quotas, render
from spyglass.api.dashboard import logins, streamed_form
from spyglass.api.dashboard import session as sessions
from spyglass.api.dashboard.session import Session
from spyglass.api.dashboard.streamed_form import StreamedForm
from spyglass.api.errors import status_of
from spyglass.api.extensions import safeguards
from spyglass.api.image_list import parse as parse_list
from spyglass.data import cache as image_cache
from spyglass.egress import AddressPolicy
from spyglass.errors import Invalid, SpyglassError, TryLater
from spyglass.identity.keystone_login import Credentials
from spyglass.images import catalog, history, project_copy, rates, recycle_bin
from spyglass.images.impact import ImpactConflict
from spyglass.sharing import invitations, members, usage, webhooks
from spyglass.web import act_as, app_state

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
PAGE_SIZE = 25
VIEWS = {
    "mine": "My images",
    "shared": "Shared with me",
    "community": "Community",
    "public": "Public",
}
# The list filters a search form may set, passed to the API's own list parser.
SEARCH_FIELDS = ("name", "status", "disk_format", "size_min", "size_max")
PATCH_MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
UPLOAD_FAILED = "The image was created without data: upload its file again or delete it."

Page = Callable[[Request, Session], Awaitable[Response]]


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _service(request: Request, session: Session, service: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return run_in_threadpool(service, app_state(request).db, session.ctx, *args)


async def _page(request: Request, session: Session, name: str, code: int = 200, **values: Any) -> Response:
    state = app_state(request)
    pending = await _service(
        request, session, invitations.list_invitations, "pending", state.settings.member_expiry_warning_days
    )
    projects = await logins.of(request).projects(request, session)
    values.update(
        session=session,
        ctx=session.ctx,
        csrf=session.csrf,
        pending_count=len(pending),
        projects=projects,
        views=VIEWS,
    )
    return templates.TemplateResponse(request, name, values, status_code=code, headers=_NO_STORE)


_NO_STORE = {"Cache-Control": "no-store"}


def logged_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for a logged-in user: others go to the login page; a POST needs the CSRF token."""

    async def endpoint(request: Request) -> Response:
        session = await sessions.current(request)
        if session is None:
            target = "/dashboard/login?" + urlencode({"next": request.url.path})
            return _redirect(target) if request.method == "GET" else _forbidden_post()
        if request.method == "POST":
            try:
                form = await _read_form(request)
            except Invalid as exc:
                return Response(exc.message, 400, _NO_STORE)
            if not sessions.csrf_ok(session, form.get("csrf_token")):
                return _forbidden_post()
            request.state.form = form
        elif request.method == "PUT" and not sessions.csrf_ok(session, request.headers.get("x-csrf-token")):
            return _forbidden_post()
        try:
            return await page(request, session)
        except SpyglassError as exc:
            return await _error_page(request, session, exc)

    return endpoint


async def _read_form(request: Request) -> FormData:
    """The posted form. With a file (the upload form without JavaScript), only the fields before
    it: its bytes are left to stream from `request.state.upload` once the CSRF token is checked."""
    if not streamed_form.is_multipart(request):
        return await request.form()
    streamed = await streamed_form.read(request)
    request.state.upload = streamed
    return streamed.fields


def _forbidden_post() -> Response:
    return Response("The form is missing its CSRF token or the session has ended.", 403, _NO_STORE)


async def _error_page(request: Request, session: Session, exc: SpyglassError) -> Response:
    status = status_of(exc)
    return await _page(request, session, "error.html", status, status=status, message=exc.message)


def _form(request: Request) -> FormData:
    form: FormData = request.state.form
    return form


# ---- logging in and out ------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    return _login_page(request, {"next": request.query_params.get("next", "/dashboard/images")})


def _login_page(
    request: Request, values: dict[str, Any], status: int = 200, refused: SpyglassError | None = None
) -> Response:
    nonce = sessions.login_nonce(request)
    values = {"error": None, **values, "csrf": sessions.csrf_token(nonce)}
    headers = dict(_NO_STORE)
    if isinstance(refused, TryLater):  # throttled, busy or Keystone away: when to come back
        headers["Retry-After"] = str(refused.retry_after)
    page = templates.TemplateResponse(request, "login.html", values, status_code=status, headers=headers)
    sessions.keep_login_nonce(request, page, nonce)
    return page


async def login(request: Request) -> Response:
    form = await request.form()
    if not sessions.login_csrf_ok(request, form.get("csrf_token")):
        return _login_page(
            request, {"next": form.get("next"), "error": "The login form expired: try again."}, 403
        )
    names = ("username", "password", "domain", "project", "project_domain")
    fields = {k: str(form.get(k) or "").strip() for k in names}
    user_domain = fields["domain"] or "Default"
    given = Credentials(
        user_name=fields["username"],
        password=str(form.get("password") or ""),
        user_domain=user_domain,
        project_name=fields["project"],
        project_domain=fields["project_domain"] or user_domain,
    )
    try:
        token = await logins.of(request).log_in(request, given)
    except SpyglassError as exc:
        del fields["password"]
        values = {"next": form.get("next"), "error": exc.message, "fields": fields}
        return _login_page(request, values, status_of(exc), exc)
    response = _redirect(_local(str(form.get("next") or "")))
    sessions.keep(request, response, token)
    return response


def _local(target: str) -> str:
    # Only a path of the dashboard itself: a login link cannot send the user elsewhere.
    return target if target.startswith("/dashboard/") and "//" not in target else "/dashboard/images"


async def logout(request: Request, session: Session) -> Response:
    try:
        await logins.of(request).log_out(request, session)
    except SpyglassError as exc:
        # The browser is logged out all the same (on a shared machine above all): its cookie goes,
        # and the token, no longer kept anywhere, runs out at its expiry.
        log.warning("The session's token could not be revoked at logout: %s", exc.detail or exc.message)
    response = _redirect("/dashboard/login")
    sessions.forget(response)
    return response


async def switch_project(request: Request, session: Session) -> Response:
    project_id = str(_form(request).get("project_id") or "")
    token = await logins.of(request).switch(request, session, project_id)
    response = _redirect("/dashboard/images")
    sessions.keep(request, response, token)
    return response


# ---- images ------------------------------------------------------------------------------------


async def images_page(request: Request, session: Session) -> Response:
    view = request.query_params.get("view", "mine")
    if view not in VIEWS:
        raise Invalid(f"Unknown view {view!r}: one of {', '.join(VIEWS)}.")
    search = {k: request.query_params[k] for k in SEARCH_FIELDS if request.query_params.get(k)}
    params: dict[str, str] = {**search, "limit": str(PAGE_SIZE)}
    if view == "mine":
        params["owner"] = session.ctx.project_id or ""
    else:
        params["visibility"] = view
    if request.query_params.get("marker"):
        params["marker"] = request.query_params["marker"]
    query = parse_list(QueryParams(params), app_state(request).settings)
    records, more = await _service(request, session, catalog.list_images, query)
    rows = [render.image(r) for r in records]
    if view == "shared":
        rows = [r for r in rows if r["owner"] != session.ctx.project_id]
    next_page = None
    if more and records:
        next_page = "?" + urlencode({"view": view, **search, "marker": records[-1].id})
    return await _page(
        request, session, "images.html", view=view, images=rows, search=search, next_page=next_page
    )


async def image_page(request: Request, session: Session) -> Response:
    image_id = request.path_params["image_id"]
    record = await _service(request, session, catalog.get_image, image_id)
    image = render.image(record)
    is_owner = record.owner == session.ctx.project_id or session.ctx.is_admin
    member_rows: list[Any] = []
    if record.visibility == "shared":
        member_rows = [
            render.member(m) for m in await _service(request, session, members.list_members, image_id)
        ]
    used = await _service(request, session, usage.list_usage, image_id)
    timeline = await _service(request, session, history.list_events, image_id) if is_owner else []
    return await _page(
        request,
        session,
        "image.html",
        image=image,
        members=member_rows,
        usage=used,
        events=timeline,
        is_owner=is_owner,
        notice=request.query_params.get("notice"),
        confirm=None,
    )


async def download(request: Request, session: Session) -> Response:
    # The API's own download handler, with the session's caller: same checks, same streaming.
    act_as(request, session.ctx)
    return await image_api.download(request)


async def upload(request: Request, session: Session) -> Response:
    act_as(request, session.ctx)
    return await image_api.upload(request)


async def create(request: Request, session: Session) -> Response:
    form = _form(request)
    body = {
        "name": str(form.get("name") or ""),
        "disk_format": str(form.get("disk_format") or "raw"),
        "container_format": str(form.get("container_format") or "bare"),
        "visibility": str(form.get("visibility") or "private"),
    }
    upload: StreamedForm | None = getattr(request.state, "upload", None)
    # The API's rates and the deployment's quota rules, the upload's rate included, before the
    # image is made: a create or an upload refused at once leaves no image behind.
    act_as(request, session.ctx)
    await quotas.admit(request, rates.IMAGE_CREATES)
    if upload is not None and upload.file_name:
        await quotas.admit(request, rates.UPLOADS)
    record = await _service(request, session, catalog.create_image, body, quotas.rules(request))
    if upload is None or not upload.file_name:
        return _redirect(f"/dashboard/images/{record.id}")
    # Without JavaScript the file came with the form: its bytes go on into the API's own upload.
    try:
        await image_api.receive_file(
            request, record.id, upload.file, content_length=None, token=session.token, admitted=True
        )
    except SpyglassError as exc:
        # Refused on the way (a quota, the size cap, a body cut short): the image exists, without
        # data. Its page says so, where the user can upload again or delete it.
        notice = f"The upload failed: {exc.message} {UPLOAD_FAILED}"
        return _redirect(f"/dashboard/images/{record.id}?" + urlencode({"notice": notice}))
    return _redirect(f"/dashboard/images/{record.id}?" + urlencode({"notice": "Uploaded."}))


# ---- sharing -----------------------------------------------------------------------------------


async def add_member(request: Request, session: Session) -> Response:
    image_id = request.path_params["image_id"]
    form = _form(request)
    member = str(form.get("member") or "").strip()
    domain = str(form.get("domain") or "").strip()
    if domain:
        found = await logins.of(request).project_id_named(request, member, domain)
        if found is None:
            raise Invalid(f"No project named {member!r} in domain {domain!r}.")
        member = found
    await _service(request, session, catalog.get_image, image_id)  # 404 before any other work
    # The API's rate and an external Keystone's project refreshed, then the visibility made
    # `shared` and the member added in one transaction: a refused share changes nothing.
    act_as(request, session.ctx)
    await quotas.admit(request, rates.MEMBER_ADDS)
    await member_api.refresh_from_keystone(request, [member])
    settings = app_state(request).settings
    await _service(
        request,
        session,
        partial(
            members.share_and_add_member,
            quota=settings.image_member_quota,
            validate=settings.validate_member_ids,
        ),
        image_id,
        {"member": member},
    )
    return _redirect(f"/dashboard/images/{image_id}?" + urlencode({"notice": f"Shared with {member}."}))


async def remove_member(request: Request, session: Session) -> Response:
    image_id, member_id = request.path_params["image_id"], request.path_params["member_id"]
    confirmed = _form(request).get("confirm") == "yes"
    guard = replace(safeguards(request), override=confirmed)
    try:
        await _service(request, session, members.delete_member, image_id, member_id, guard)
    except ImpactConflict as exc:
        return await _confirm(request, session, image_id, f"remove project {member_id} from", exc)
    return _redirect(f"/dashboard/images/{image_id}?" + urlencode({"notice": f"Removed {member_id}."}))


async def delete(request: Request, session: Session) -> Response:
    image_id = request.path_params["image_id"]
    guard = replace(safeguards(request), override=_form(request).get("confirm") == "yes")
    state = app_state(request)
    try:
        await run_in_threadpool(catalog.delete_image, state.db, state.stores, session.ctx, image_id, guard)
    except ImpactConflict as exc:
        return await _confirm(request, session, image_id, "delete", exc)
    await run_in_threadpool(image_cache.forget, state.image_cache, image_id)
    return _redirect("/dashboard/images?" + urlencode({"view": "mine"}))


async def _confirm(
    request: Request, session: Session, image_id: str, what: str, refused: ImpactConflict
) -> Response:
    """The owner protects its consumers: show who would be cut off, and post the same form again
    with `confirm=yes` (the API's override header) only when the user says so."""
    record = await _service(request, session, catalog.get_image, image_id)
    return await _page(
        request,
        session,
        "confirm.html",
        status=409,
        image=render.image(record),
        what=what,
        action=request.url.path,
        affected=refused.projects,
        message=refused.message,
    )


async def invitations_page(request: Request, session: Session) -> Response:
    days = app_state(request).settings.member_expiry_warning_days
    pending = await _service(request, session, invitations.list_invitations, "pending", days)
    answered = [
        i
        for i in await _service(request, session, invitations.list_invitations, "all", days)
        if i["status"] != "pending"
    ]
    return await _page(request, session, "invitations.html", pending=pending, answered=answered)


async def answer(request: Request, session: Session) -> Response:
    image_id, answer = request.path_params["image_id"], request.path_params["answer"]
    status = {"accept": "accepted", "reject": "rejected"}.get(answer)
    if status is None:
        raise Invalid("Answer accept or reject.")
    body = {"status": status}
    await _service(request, session, members.update_member, image_id, session.ctx.project_id or "", body)
    return _redirect("/dashboard/invitations")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return Response("Not found", 404)
    media_type, body = STATIC[name]
    # Assets change only with a release: their URLs carry the release, so they may be kept a day.
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


STATIC = {
    name: (media, (HERE / "static" / name).read_bytes())
    for name, media in (("dashboard.css", "text/css"), ("dashboard.js", "text/javascript"))
}


async def home(request: Request) -> Response:
    return _redirect("/dashboard/images")


async def not_found(request: Request, session: Session) -> Response:
    return await _page(
        request, session, "error.html", 404, status=404, message="The page could not be found."
    )


# ---- copy into my project, the recycle bin, webhooks -------------------------------------------


async def copy(request: Request, session: Session) -> Response:
    image_id = request.path_params["image_id"]
    name = str(_form(request).get("name") or "").strip()
    state = app_state(request)
    record = await _service(
        request,
        session,
        project_copy.copy_image,
        image_id,
        {"name": name} if name else None,
        state.stores.default.name,
    )
    return _redirect(f"/dashboard/images/{record.id}?" + urlencode({"notice": "Copied into your project."}))


async def bin_page(request: Request, session: Session) -> Response:
    entries = await _service(request, session, recycle_bin.list_bin)
    retention = app_state(request).settings.recycle_retention_days
    return await _page(request, session, "bin.html", entries=entries, retention=retention)


async def restore(request: Request, session: Session) -> Response:
    image_id = request.path_params["image_id"]
    bin_on = app_state(request).settings.recycle_retention_days > 0
    await _service(request, session, recycle_bin.restore_image, image_id, bin_on)
    return _redirect(f"/dashboard/images/{image_id}?" + urlencode({"notice": "Restored."}))


async def webhooks_page(
    request: Request, session: Session, created: dict[str, Any] | None = None
) -> Response:
    hooks = await _service(request, session, webhooks.list_webhooks)
    for hook in hooks:
        hook["deliveries"] = await _service(request, session, webhooks.list_deliveries, hook["id"])
    return await _page(request, session, "webhooks.html", webhooks=hooks, created=created)


async def add_webhook(request: Request, session: Session) -> Response:
    state = app_state(request)
    body = {"url": str(_form(request).get("url") or "").strip()}
    policy = AddressPolicy.of(state.settings)
    created = await _service(request, session, webhooks.create_webhook, body, state.secret_box, policy)
    # The secret is shown on this answer only (the API's rule): this page is not a redirect.
    return await webhooks_page(request, session, created)


async def delete_webhook(request: Request, session: Session) -> Response:
    await _service(request, session, webhooks.delete_webhook, request.path_params["webhook_id"])
    return _redirect("/dashboard/webhooks")
