"""Images API v2 multi-store handlers: the stores on offer, and removing an image's copy from one."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.blobs.registry import StoreSet
from spyglass.data import store_removal as image_stores
from spyglass.images.policy import Action, authorize
from spyglass.web import JSONResponse, app_state, caller

# The request header that chooses the store of an upload, a stage or an import.
STORE_HEADER = "X-Image-Meta-Store"
# The store types as Glance names its drivers.
GLANCE_TYPES = {"filesystem": "file", "swift": "swift", "s3": "s3", "memory": "memory"}


def _summary(stores: StoreSet, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": name}
    description = stores.description(name)
    if description:
        entry["description"] = description
    if name == stores.default_name:
        entry["default"] = "true"
    return entry


async def info_stores(request: Request) -> Response:
    caller(request)
    stores: StoreSet = app_state(request).stores
    return JSONResponse({"stores": [_summary(stores, name) for name in stores]})


async def info_stores_detail(request: Request) -> Response:
    ctx = caller(request)
    authorize(ctx, Action.GET_STORES_DETAIL)
    stores: StoreSet = app_state(request).stores
    details = []
    for name in stores:
        entry = _summary(stores, name)
        spec = stores.specs.get(name)
        entry["type"] = GLANCE_TYPES[spec.type] if spec is not None else "unknown"
        entry["properties"] = spec.properties() if spec is not None else {}
        details.append(entry)
    return JSONResponse({"stores": details})


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
    return Response(status_code=204)


routes = [
    Route("/v2/info/stores", info_stores, methods=["GET"]),
    Route("/v2/info/stores/detail", info_stores_detail, methods=["GET"]),
    Route("/v2/stores/{store_id}/{image_id}", delete_from_store, methods=["DELETE"]),
]
