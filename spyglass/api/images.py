"""Images API v2 handlers: images, tags, data, actions, schemas, info and versions."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import anyio
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from spyglass.api import image_list, imports, quotas, render
from spyglass.api.extensions import safeguards
from spyglass.api.local_file import LocalFileResponse
from spyglass.api.sent_bytes import CountingResponse
from spyglass.api.stores import STORE_HEADER
from spyglass.blobs import BlobStore
from spyglass.data import cache as image_cache
from spyglass.data import transfer as image_data
from spyglass.data.cache import ImageCache
from spyglass.errors import NotFound, UnsupportedMediaType
from spyglass.images import catalog as images
from spyglass.images import rates
from spyglass.images.schemas import NAMES as SCHEMA_NAMES
from spyglass.images.schemas import schema
from spyglass.sharing import usage
from spyglass.web import JSONResponse, app_state, base_url, call, caller, json_body

PATCH_MEDIA_TYPES = (
    "application/openstack-images-v2.0-json-patch",
    "application/openstack-images-v2.1-json-patch",
)
# The versions document of Glance 33 (50-versions.http), in its order: v2.16 (cache API) and v2.14
# are not offered there, and v2.17 sits among the others.
VERSIONS = (
    ("v2.15", "SUPPORTED"),
    ("v2.13", "SUPPORTED"),
    ("v2.12", "SUPPORTED"),
    ("v2.11", "SUPPORTED"),
    ("v2.10", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.8", "SUPPORTED"),
    ("v2.17", "CURRENT"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
)


def _image_headers(request: Request) -> dict[str, str]:
    store_ids = ",".join(app_state(request).stores)
    return {"OpenStack-image-store-ids": store_ids, **imports.import_methods_header()}


def _render(request: Request, record: Any) -> dict[str, Any]:
    return render.image(record, app_state(request).store_rendering)


# Glance offers these two besides the others where its image cache is on.
CACHE_VERSIONS = {"v2.15": (("v2.16", "SUPPORTED"), ("v2.15", "SUPPORTED"), ("v2.14", "SUPPORTED"))}


def _versions(request: Request) -> dict[str, Any]:
    href = f"{base_url(request)}/v2/"
    links = [{"rel": "self", "href": href}]
    offered: tuple[tuple[str, str], ...] = VERSIONS
    if app_state(request).image_cache is not None:
        offered = tuple(v for version in VERSIONS for v in CACHE_VERSIONS.get(version[0], (version,)))
    return {"versions": [{"id": v, "status": status, "links": links} for v, status in offered]}


async def versions_root(request: Request) -> Response:
    """The unversioned root answers 300 Multiple Choices, as Glance does."""
    return JSONResponse(_versions(request), status_code=300)


async def versions(request: Request) -> Response:
    return JSONResponse(_versions(request))


async def create(request: Request) -> Response:
    ctx = caller(request)
    await quotas.admit(request, rates.IMAGE_CREATES)
    body = await json_body(request)
    record = await run_in_threadpool(
        images.create_image, app_state(request).db, ctx, body, quotas.rules(request)
    )
    headers = {"Location": f"{base_url(request)}/v2/images/{record.id}", **_image_headers(request)}
    return JSONResponse(_render(request, record), status_code=201, headers=headers)


async def index(request: Request) -> Response:
    ctx = caller(request)
    query = image_list.parse(request.query_params, app_state(request).settings)
    records, more = await run_in_threadpool(images.list_images, app_state(request).db, ctx, query)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    first = "/v2/images" + (f"?{urlencode(params)}" if params else "")
    stores = app_state(request).store_rendering
    body: dict[str, Any] = {
        "images": [render.image(r, stores) for r in records],
        "first": first,
        "schema": "/v2/schemas/images",
    }
    if more and records:
        body["next"] = "/v2/images?" + urlencode([*params, ("marker", records[-1].id)])
    return JSONResponse(body)


async def show(request: Request) -> Response:
    record = await call(request, images.get_image, request.path_params["image_id"])
    return JSONResponse(_render(request, record))


async def patch(request: Request) -> Response:
    ctx = caller(request)
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type not in PATCH_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"The request media type {media_type or 'None'} is not supported by this server.",
            f"Image PATCH expects Content-Type one of: {', '.join(PATCH_MEDIA_TYPES)}",
            accept_patch=", ".join(PATCH_MEDIA_TYPES),
        )
    ops = await json_body(request)
    image_id = request.path_params["image_id"]
    record = await run_in_threadpool(
        images.update_image,
        app_state(request).db,
        ctx,
        image_id,
        ops,
        media_type,
        safeguards(request),
        quotas.rules(request),
    )
    return JSONResponse(_render(request, record))


async def delete(request: Request) -> Response:
    ctx = caller(request)
    state = app_state(request)
    image_id = request.path_params["image_id"]
    await run_in_threadpool(images.delete_image, state.db, state.stores, ctx, image_id, safeguards(request))
    await imports.discard_staged(request, image_id)
    await run_in_threadpool(image_cache.forget, state.image_cache, image_id)
    return Response(status_code=204)


async def add_tag(request: Request) -> Response:
    p = request.path_params
    await call(request, images.add_tag, p["image_id"], p["tag"])
    return Response(status_code=204)


async def delete_tag(request: Request) -> Response:
    p = request.path_params
    await call(request, images.delete_tag, p["image_id"], p["tag"])
    return Response(status_code=204)


async def deactivate(request: Request) -> Response:
    ctx = caller(request)
    await run_in_threadpool(
        images.deactivate_image,
        app_state(request).db,
        ctx,
        request.path_params["image_id"],
        safeguards(request),
    )
    return Response(status_code=204)


async def reactivate(request: Request) -> Response:
    await call(request, images.reactivate_image, request.path_params["image_id"])
    return Response(status_code=204)


async def upload(request: Request) -> Response:
    caller(request)  # 401 before any complaint about the body
    imports.require_octet_stream(request)
    await receive_file(
        request,
        request.path_params["image_id"],
        request.stream(),
        content_length=imports.content_length(request),
        token=request.headers.get("x-auth-token"),
    )
    return Response(status_code=204)


async def receive_file(
    request: Request,
    image_id: str,
    body: AsyncIterator[bytes],
    *,
    content_length: int | None,
    token: str | None,
    admitted: bool = False,
) -> None:
    """PUT /file's upload of `body` as the request's caller: the same rate, quotas, size caps,
    hashing and status steps. The dashboard's upload form without JavaScript streams its file here
    (`admitted`: it counted the upload against the rate already, before it created the image)."""
    ctx = caller(request)
    state = app_state(request)
    if not admitted:
        await quotas.admit(request, rates.UPLOADS)
    await image_data.upload(
        state.db,
        state.stores.choose(request.headers.get(STORE_HEADER)),
        ctx,
        image_id,
        body,
        content_length=content_length,
        settings=state.settings,
        token=token,
        quotas=quotas.rules(request),
    )


async def download(request: Request) -> Response:
    ctx = caller(request)
    state = app_state(request)
    for _attempt in range(2):
        found = await run_in_threadpool(
            image_data.prepare_download,
            state.db,
            state.stores,
            ctx,
            request.path_params["image_id"],
            request.headers.get("range"),
            state.image_cache.lookup if state.image_cache is not None else None,
        )
        if found is None:
            return Response(status_code=204)
        try:
            response = await run_in_threadpool(
                _data_response,
                found.store or state.stores.default,
                state.image_cache,
                found,
                request.method == "HEAD",
            )
            break
        except FileNotFoundError:
            # The blob went between the look-up and the open: deleted with its image, swapped for
            # an identical blob (spyglass.blob_refs) or one of several locations removed. Look again.
            continue
    else:
        return Response(status_code=204)
    if request.method == "HEAD":
        # The headers of the data, not a download: nothing read, nothing counted.
        return response
    try:
        await usage.record_download(state.db, ctx, found)
    except BaseException:
        if isinstance(response, LocalFileResponse):
            response.close()
        raise
    notice = usage.send_notice(ctx, found, request.client.host if request.client else None)
    if state.settings.notifications_transport_url and notice is not None:
        # image.send once the bytes went out, with how many did.
        return CountingResponse(response, functools.partial(usage.notify_sent, state.db, notice))
    return response


def _data_response(
    store: BlobStore, cache: ImageCache | None, found: image_data.Download, head: bool
) -> Response:
    """The whole data or the chosen range: from an open file where the store is local or the
    image is in this node's cache, else a stream of the store's reads (for HEAD, only the headers);
    a whole download of an uncached image fills the cache on the way."""
    part = found.part
    start, end = (0, found.size) if part is None else (part.start, part.end)
    status = 200 if part is None else 206
    headers = {}
    if part is None and found.record.checksum:
        headers["Content-MD5"] = found.record.checksum
    if part is not None:
        headers["Content-Range"] = part.content_range(found.size)
    path = found.cached or store.local_path(found.key)
    if path is not None:
        return LocalFileResponse.open(str(path), start, end, status, headers)
    headers["Accept-Ranges"] = "bytes"
    headers["Content-Length"] = str(end - start)
    if head:
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    chunks = store.read(found.key, start, end)
    body = _filling(cache, found.record, chunks) if cache is not None and part is None else chunks
    return StreamingResponse(
        body,
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


async def _filling(cache: ImageCache, record: Any, chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The store's chunks, written into the cache on the way unless another download fills it."""
    fill = await run_in_threadpool(cache.filler, record)
    if fill is None:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
        return
    try:
        async for chunk in iterate_in_threadpool(fill.tee(chunks)):
            yield chunk
    finally:
        # The client went away, or the store failed: nothing half-written stays (a no-op once
        # installed). Each read ran to its end in its thread before we got here.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(fill.abort)


async def get_schema(request: Request) -> Response:
    caller(request)
    name = request.path_params["name"]
    if name not in SCHEMA_NAMES:
        raise NotFound("The resource could not be found.")
    return JSONResponse(schema(name))


routes = [
    Route("/v2/images", index, methods=["GET"]),
    Route("/v2/images", create, methods=["POST"]),
    Route("/v2/images/{image_id}", show, methods=["GET"]),
    Route("/v2/images/{image_id}", patch, methods=["PATCH"]),
    Route("/v2/images/{image_id}", delete, methods=["DELETE"]),
    Route("/v2/images/{image_id}/file", upload, methods=["PUT"]),
    Route("/v2/images/{image_id}/file", download, methods=["GET"]),
    Route("/v2/images/{image_id}/stage", imports.stage, methods=["PUT"]),
    Route("/v2/images/{image_id}/import", imports.import_image, methods=["POST"]),
    Route("/v2/images/{image_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/v2/images/{image_id}/tags/{tag}", delete_tag, methods=["DELETE"]),
    Route("/v2/images/{image_id}/actions/deactivate", deactivate, methods=["POST"]),
    Route("/v2/images/{image_id}/actions/reactivate", reactivate, methods=["POST"]),
    Route("/v2/schemas/{name}", get_schema, methods=["GET"]),
    Route("/v2/info/import", imports.info_import, methods=["GET"]),
    Route("/v2/info/usage", quotas.usage, methods=["GET"]),
    Route("/v2", versions, methods=["GET"]),
    Route("/v2/", versions, methods=["GET"]),
    Route("/versions", versions, methods=["GET"]),
    Route("/", versions_root, methods=["GET"]),
]
