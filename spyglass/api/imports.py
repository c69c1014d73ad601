"""Images API v2 interoperable import handlers: stage, import, and the import methods on offer."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from spyglass import imports
from spyglass.api.common import JSONResponse, caller, json_body
from spyglass.errors import Invalid, UnsupportedMediaType

IMPORT_METHODS_HEADER = "OpenStack-image-import-methods"


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise Invalid("Content-Length must be a non-negative integer.")
    return int(raw)


def require_octet_stream(request: Request) -> None:
    media_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType(f"Invalid content type {media_type}")


async def stage(request: Request) -> Response:
    ctx = await caller(request)
    require_octet_stream(request)
    state = request.app.state
    await imports.stage(
        state.db,
        imports.staging_store(state.settings),
        ctx,
        request.path_params["image_id"],
        request.stream(),
        content_length=content_length(request),
        settings=state.settings,
    )
    return Response(status_code=204)


async def import_image(request: Request) -> Response:
    ctx = await caller(request)
    body = await json_body(request)
    state = request.app.state
    job = await run_in_threadpool(
        imports.begin_import,
        state.db,
        ctx,
        request.path_params["image_id"],
        body,
        state.settings,
        state.store.name,
    )
    imports.start(job, state.db, state.store, imports.staging_store(state.settings), state.settings)
    return Response(status_code=202)


async def discard_staged(request: Request, image_id: str) -> None:
    """Data staged for an image that was just deleted: the import will not happen now."""
    await run_in_threadpool(imports.staging_store(request.app.state.settings).delete, image_id)


async def info_import(request: Request) -> Response:
    await caller(request)
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
