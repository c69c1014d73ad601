"""Images API v2 interoperable import handlers: stage, import, and the import methods on offer."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from spyglass.api import quotas
from spyglass.api.stores import STORE_HEADER
from spyglass.context import RequestContext
from spyglass.data import imports, store_copies
from spyglass.errors import Invalid, UnsupportedMediaType
from spyglass.images import rates
from spyglass.web import JSONResponse, app_state, caller, json_body

IMPORT_METHODS_HEADER = "OpenStack-image-import-methods"


def request_id(request: Request) -> str | None:
    """The x-openstack-request-id of this request's answer (spyglass.api.app), kept with its task."""
    found = request.scope.get("state", {}).get("request_id")
    return found if isinstance(found, str) else None


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Invalid("Content-Length must be a non-negative integer.")
    return int(raw)


def require_octet_stream(request: Request) -> None:
    media_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType(f"Invalid content type {media_type}")


async def stage(request: Request) -> Response:
    ctx = caller(request)
    require_octet_stream(request)
    await quotas.admit(request, rates.UPLOADS)
    state = app_state(request)
    header = request.headers.get(STORE_HEADER)
    store_name = state.stores.choose(header).name if header else None
    await imports.stage(
        state.db,
        imports.staging_store(state.settings),
        ctx,
        request.path_params["image_id"],
        request.stream(),
        content_length=content_length(request),
        settings=state.settings,
        store_name=store_name,
        quotas=quotas.rules(request),
    )
    return Response(status_code=204)


async def import_image(request: Request) -> Response:
    ctx = caller(request)
    await quotas.admit(request, rates.IMPORTS)
    body = await json_body(request)
    state = app_state(request)
    header = request.headers.get(STORE_HEADER)
    if _method_name(body) == store_copies.COPY_IMAGE:
        await _copy_image(request, ctx, body, header)
        return Response(status_code=202)
    job = await run_in_threadpool(
        imports.begin_import,
        state.db,
        ctx,
        request.path_params["image_id"],
        body,
        state.settings,
        state.stores,
        header,
        request_id=request_id(request),
        token=request.headers.get("x-auth-token"),
        quotas=quotas.rules(request),
    )
    imports.start(job, state.db, state.stores, imports.staging_store(state.settings), state.settings)
    return Response(status_code=202)


def _method_name(body: Any) -> Any:
    method = body.get("method") if isinstance(body, dict) else None
    return method.get("name") if isinstance(method, dict) else None


async def _copy_image(
    request: Request, ctx: RequestContext, body: dict[str, Any], header: str | None
) -> None:
    """copy-image: the data of an active image into more stores, in the background."""
    state = app_state(request)
    imports.ImportRequest.parse(body)
    targets = store_copies.targets(body, header, state.stores, state.stores.default_name)
    job = await run_in_threadpool(
        store_copies.begin_copy,
        state.db,
        ctx,
        request.path_params["image_id"],
        targets,
        state.stores.default_name,
        body,
        request_id(request),
    )
    if job is not None:
        imports.start_copy(job, state.db, state.stores, state.settings)


async def discard_staged(request: Request, image_id: str) -> None:
    """Data staged for an image that was just deleted: the import will not happen now."""
    await run_in_threadpool(imports.staging_store(app_state(request).settings).delete, image_id)


async def info_import(request: Request) -> Response:
    caller(request)
    return JSONResponse(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(imports.IMPORT_METHODS),
            }
        }
    )


def import_methods_header() -> dict[str, str]:
    return {IMPORT_METHODS_HEADER: ",".join(imports.IMPORT_METHODS)}
