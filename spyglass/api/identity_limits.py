"""Identity API v3 unified limits, and the read-only services and regions they refer to.

`/v3/registered_limits`, `/v3/limits` and `/v3/limits/model`, rendered as Keystone renders them:
creations take and answer a list (201), a single limit is wrapped in its singular name with
`links.self`, listings carry `links`. The service functions are in spyglass.identity.limits and
spyglass.identity.services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from spyglass.api.identity_admin import BODY_MAX, Row
from spyglass.identity import limits, services
from spyglass.web import JSONResponse, app_state, base_url, caller, json_body

_REGISTERED_FIELDS = ("id", "service_id", "region_id", "resource_name", "default_limit", "description")
_LIMIT_FIELDS = (
    "id",
    "project_id",
    "domain_id",
    "service_id",
    "region_id",
    "resource_name",
    "resource_limit",
    "description",
)


def _url(request: Request, *parts: str) -> str:
    return "/".join((f"{base_url(request)}/v3", *parts))


def _shown(request: Request, collection: str, fields: tuple[str, ...], row: Row) -> Row:
    return {**{f: row.get(f) for f in fields}, "links": {"self": _url(request, collection, row["id"])}}


def _links(request: Request, *parts: str) -> dict[str, str | None]:
    query = request.url.query
    return {"self": _url(request, *parts) + (f"?{query}" if query else ""), "previous": None, "next": None}


async def _run(request: Request, service: Callable[..., Any], *args: Any, body: bool = False) -> Any:
    ctx = caller(request)
    if body:
        args = (*args, await json_body(request, at_most=BODY_MAX))
    return await run_in_threadpool(service, app_state(request).db, ctx, *args)


def _region(request: Request) -> str:
    return app_state(request).settings.region


def _resource_routes(
    collection: str, fields: tuple[str, ...], crud: dict[str, Callable[..., Any]]
) -> list[BaseRoute]:
    """The five routes of registered limits or of limits; `crud` names their service functions."""
    member = collection[:-1]
    regional = collection == "registered_limits"

    def extra(request: Request) -> tuple[str, ...]:
        return (_region(request),) if regional else ()

    async def listing(request: Request) -> Response:
        rows = await _run(request, crud["list"], dict(request.query_params))
        shown = [_shown(request, collection, fields, r) for r in rows]
        return JSONResponse({collection: shown, "links": _links(request, collection)})

    async def create(request: Request) -> Response:
        rows = await _run(request, crud["create"], _region(request), body=True)
        return JSONResponse(
            {collection: [_shown(request, collection, fields, r) for r in rows]}, status_code=201
        )

    async def show(request: Request) -> Response:
        row = await _run(request, crud["get"], request.path_params["id"])
        return JSONResponse({member: _shown(request, collection, fields, row)})

    async def update(request: Request) -> Response:
        row = await _run(request, crud["update"], *extra(request), request.path_params["id"], body=True)
        return JSONResponse({member: _shown(request, collection, fields, row)})

    async def remove(request: Request) -> Response:
        await _run(request, crud["delete"], request.path_params["id"])
        return Response(status_code=204)

    return [
        Route(f"/v3/{collection}", listing, methods=["GET"]),
        Route(f"/v3/{collection}", create, methods=["POST"]),
        Route(f"/v3/{collection}/{{id}}", show, methods=["GET"]),
        Route(f"/v3/{collection}/{{id}}", update, methods=["PATCH"]),
        Route(f"/v3/{collection}/{{id}}", remove, methods=["DELETE"]),
    ]


async def model(request: Request) -> Response:
    found = limits.get_limit_model(caller(request))
    return JSONResponse({"model": found, "links": {"self": _url(request, "limits", "model")}})


# ---- services and regions ------------------------------------------------------------------------


def _service(request: Request, row: Row) -> Row:
    return {**row, "links": {"self": _url(request, "services", row["id"])}}


def _region_shown(request: Request, row: Row) -> Row:
    return {**row, "links": {"self": _url(request, "regions", row["id"])}}


async def list_services(request: Request) -> Response:
    rows = services.list_services(caller(request), dict(request.query_params))
    return JSONResponse(
        {"services": [_service(request, r) for r in rows], "links": _links(request, "services")}
    )


async def get_service(request: Request) -> Response:
    row = services.get_service(caller(request), request.path_params["id"])
    return JSONResponse({"service": _service(request, row)})


async def list_regions(request: Request) -> Response:
    rows = services.list_regions(caller(request), _region(request), dict(request.query_params))
    shown = [_region_shown(request, r) for r in rows]
    return JSONResponse({"regions": shown, "links": _links(request, "regions")})


async def get_region(request: Request) -> Response:
    row = services.get_region(caller(request), _region(request), request.path_params["id"])
    return JSONResponse({"region": _region_shown(request, row)})


routes: list[BaseRoute] = [
    # Before /v3/limits/{id}, which would take "model" for an id.
    Route("/v3/limits/model", model, methods=["GET"]),
    *_resource_routes(
        "registered_limits",
        _REGISTERED_FIELDS,
        {
            "list": limits.list_registered_limits,
            "get": limits.get_registered_limit,
            "create": limits.create_registered_limits,
            "update": limits.update_registered_limit,
            "delete": limits.delete_registered_limit,
        },
    ),
    *_resource_routes(
        "limits",
        _LIMIT_FIELDS,
        {
            "list": limits.list_limits,
            "get": limits.get_limit,
            "create": limits.create_limits,
            "update": limits.update_limit,
            "delete": limits.delete_limit,
        },
    ),
    Route("/v3/services", list_services, methods=["GET"]),
    Route("/v3/services/{id}", get_service, methods=["GET"]),
    Route("/v3/regions", list_regions, methods=["GET"]),
    Route("/v3/regions/{id}", get_region, methods=["GET"]),
]
