"""Images API v2 multi-store handlers: the stores on offer, and removing an image's copy from one."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.blobs.registry import StoreSet
from spyglass.data import cache as image_cache
from spyglass.data import stores as image_stores
from spyglass.web import JSONResponse, app_state, caller

# The request header that chooses the store of an upload, a stage or an import.
STORE_HEADER = "X-Image-Meta-Store"


async def info_stores(request: Request) -> Response:
    ctx = caller(request)
    return JSONResponse({"stores": image_stores.describe(ctx, app_state(request).stores)})


async def info_stores_detail(request: Request) -> Response:
    ctx = caller(request)
    return JSONResponse({"stores": image_stores.describe(ctx, app_state(request).stores, detail=True)})


async def delete_from_store(request: Request) -> Response:
    ctx = caller(request)
    stores: StoreSet = app_state(request).stores
    p = request.path_params
    await run_in_threadpool(
        image_stores.delete_from_store,
        app_state(request).db,
        stores,
        stores.default_name,
        ctx,
        p["store_id"],
        p["image_id"],
    )
    # The image's data is the same in its other stores; its cached copy goes all the same, so that
    # the next download reads it again from a store that still holds it.
    await run_in_threadpool(image_cache.forget, app_state(request).image_cache, p["image_id"])
    return Response(status_code=204)


routes = [
    Route("/v2/info/stores", info_stores, methods=["GET"]),
    Route("/v2/info/stores/detail", info_stores_detail, methods=["GET"]),
    Route("/v2/stores/{store_id}/{image_id}", delete_from_store, methods=["DELETE"]),
]
