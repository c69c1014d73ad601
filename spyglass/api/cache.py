"""Images API 2.14 image cache handlers (`/v2/cache`), as Glance answers them: 200 with the cached
and queued images, 202 for a queued image, 204 for removals."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.data import cache as image_cache
from spyglass.web import JSONResponse, app_state, call

CLEAR_TARGET_HEADER = "x-image-cache-clear-target"


async def cache_state(request: Request) -> Response:
    return JSONResponse(await call(request, image_cache.state, app_state(request).image_cache))


async def queue_image(request: Request) -> Response:
    cache = app_state(request).image_cache
    await call(request, image_cache.queue, cache, request.path_params["image_id"])
    return Response(status_code=202)


async def delete_entry(request: Request) -> Response:
    cache = app_state(request).image_cache
    await call(request, image_cache.delete, cache, request.path_params["image_id"])
    return Response(status_code=204)


async def clear(request: Request) -> Response:
    target = request.headers.get(CLEAR_TARGET_HEADER, "")
    await call(request, image_cache.clear, app_state(request).image_cache, target)
    return Response(status_code=204)


routes = [
    Route("/v2/cache", cache_state, methods=["GET"]),
    Route("/v2/cache/", cache_state, methods=["GET"]),
    Route("/v2/cache", clear, methods=["DELETE"]),
    Route("/v2/cache/", clear, methods=["DELETE"]),
    Route("/v2/cache/{image_id}", queue_image, methods=["PUT"]),
    Route("/v2/cache/{image_id}", delete_entry, methods=["DELETE"]),
]
