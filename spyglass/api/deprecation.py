"""Handlers of deprecation and families (spyglass.images.deprecation, spyglass.images.families):
deprecate, undeprecate, the consumer's notices and a family's latest image."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.api import render
from spyglass.images import deprecation, families
from spyglass.web import JSONResponse, app_state, call, optional_json_body

# {"replacement", "obsolete_at", "delete_at"}: a few hundred bytes.
BODY_MAX = 64 * 1024


def _image(request: Request, record: Any) -> dict[str, Any]:
    return render.image(record, app_state(request).store_rendering)


async def deprecate(request: Request) -> Response:
    body = await optional_json_body(request, at_most=BODY_MAX)
    record = await call(request, deprecation.deprecate_image, request.path_params["image_id"], body)
    return JSONResponse(_image(request, record))


async def undeprecate(request: Request) -> Response:
    record = await call(request, deprecation.undeprecate_image, request.path_params["image_id"])
    return JSONResponse(_image(request, record))


async def notices(request: Request) -> Response:
    rows = await call(request, deprecation.list_notices)
    return JSONResponse({"notices": rows})


async def family_latest(request: Request) -> Response:
    record = await call(request, families.latest, request.path_params["family"])
    return JSONResponse(_image(request, record))


routes = [
    Route("/v2/images/{image_id}/actions/deprecate", deprecate, methods=["POST"]),
    Route("/v2/images/{image_id}/actions/undeprecate", undeprecate, methods=["POST"]),
    Route("/v2/shared-images/notices", notices, methods=["GET"]),
    Route("/v2/families/{family}/latest", family_latest, methods=["GET"]),
]
