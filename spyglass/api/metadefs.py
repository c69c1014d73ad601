"""Handlers of the metadata definitions API (spyglass.metadefs): /v2/metadefs/... and the schemas
under /v2/schemas/metadefs/..."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spyglass.errors import NotFound
from spyglass.metadefs import contents, namespaces, resource_types, schemas
from spyglass.metadefs.documents import namespace_href
from spyglass.web import JSONResponse, app_state, base_url, call, caller, json_body

_TRUE = ("1", "t", "true", "on", "y", "yes")


def _ns(request: Request) -> str:
    name: str = request.path_params["namespace"]
    return name


def _no_content() -> Response:
    return Response(status_code=204)


# ---- namespaces -------------------------------------------------------------------------------------


async def list_namespaces(request: Request) -> Response:
    settings = app_state(request).settings
    query = namespaces.parse_query(request.query_params, settings.limit_param_default, settings.api_limit_max)
    found, next_marker = await call(request, namespaces.list_namespaces, query)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    body = {
        "namespaces": found,
        "first": "/v2/metadefs/namespaces" + (f"?{urlencode(params)}" if params else ""),
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if next_marker is not None:
        body["next"] = "/v2/metadefs/namespaces?" + urlencode([*params, ("marker", next_marker)])
    return JSONResponse(body)


async def create_namespace(request: Request) -> Response:
    body = await json_body(request)
    doc = await call(request, namespaces.create_namespace, body)
    location = base_url(request) + namespace_href(doc["namespace"])
    return JSONResponse(doc, status_code=201, headers={"Location": location})


async def show_namespace(request: Request) -> Response:
    resource_type = request.query_params.get("resource_type")
    return JSONResponse(await call(request, namespaces.get_namespace, _ns(request), resource_type))


async def update_namespace(request: Request) -> Response:
    body = await json_body(request)
    return JSONResponse(await call(request, namespaces.update_namespace, _ns(request), body))


async def delete_namespace(request: Request) -> Response:
    await call(request, namespaces.delete_namespace, _ns(request))
    return _no_content()


def _delete_all(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        await call(request, contents.delete_all, _ns(request), kind)
        return _no_content()

    return handler


# ---- objects ----------------------------------------------------------------------------------------


async def list_objects(request: Request) -> Response:
    found = await call(request, contents.list_objects, _ns(request))
    return JSONResponse({"objects": found, "schema": "v2/schemas/metadefs/objects"})


async def create_object(request: Request) -> Response:
    body = await json_body(request)
    return JSONResponse(await call(request, contents.create_object, _ns(request), body), status_code=201)


async def show_object(request: Request) -> Response:
    name = request.path_params["name"]
    return JSONResponse(await call(request, contents.get_object, _ns(request), name))


async def update_object(request: Request) -> Response:
    body = await json_body(request)
    name = request.path_params["name"]
    return JSONResponse(await call(request, contents.update_object, _ns(request), name, body))


async def delete_object(request: Request) -> Response:
    await call(request, contents.delete_object, _ns(request), request.path_params["name"])
    return _no_content()


# ---- properties -------------------------------------------------------------------------------------


async def list_properties(request: Request) -> Response:
    return JSONResponse({"properties": await call(request, contents.list_properties, _ns(request))})


async def create_property(request: Request) -> Response:
    body = await json_body(request)
    return JSONResponse(await call(request, contents.create_property, _ns(request), body), status_code=201)


async def show_property(request: Request) -> Response:
    name = request.path_params["name"]
    resource_type = request.query_params.get("resource_type")
    return JSONResponse(await call(request, contents.get_property, _ns(request), name, resource_type))


async def update_property(request: Request) -> Response:
    body = await json_body(request)
    name = request.path_params["name"]
    return JSONResponse(await call(request, contents.update_property, _ns(request), name, body))


async def delete_property(request: Request) -> Response:
    await call(request, contents.delete_property, _ns(request), request.path_params["name"])
    return _no_content()


# ---- tags -------------------------------------------------------------------------------------------


async def list_tags(request: Request) -> Response:
    page = contents.parse_tag_page(request.query_params)
    return JSONResponse({"tags": await call(request, contents.list_tags, _ns(request), page)})


async def create_tags(request: Request) -> Response:
    body = await json_body(request)
    # openstacksdk may send the header twice, spelled differently: the last one is what it meant.
    sent = request.headers.getlist("x-openstack-append")
    append = bool(sent) and sent[-1].strip().lower() in _TRUE
    made = await call(request, contents.create_tags, _ns(request), body, append)
    return JSONResponse({"tags": made}, status_code=201)


async def create_tag(request: Request) -> Response:
    name = request.path_params["name"]
    return JSONResponse(await call(request, contents.create_tag, _ns(request), name), status_code=201)


async def show_tag(request: Request) -> Response:
    return JSONResponse(await call(request, contents.get_tag, _ns(request), request.path_params["name"]))


async def update_tag(request: Request) -> Response:
    body = await json_body(request)
    name = request.path_params["name"]
    return JSONResponse(await call(request, contents.update_tag, _ns(request), name, body))


async def delete_tag(request: Request) -> Response:
    await call(request, contents.delete_tag, _ns(request), request.path_params["name"])
    return _no_content()


# ---- resource types ---------------------------------------------------------------------------------


async def list_resource_types(request: Request) -> Response:
    return JSONResponse({"resource_types": await call(request, resource_types.list_resource_types)})


async def list_associations(request: Request) -> Response:
    found = await call(request, resource_types.list_associations, _ns(request))
    return JSONResponse({"resource_type_associations": found})


async def associate(request: Request) -> Response:
    body = await json_body(request)
    return JSONResponse(await call(request, resource_types.associate, _ns(request), body), status_code=201)


async def dissociate(request: Request) -> Response:
    await call(request, resource_types.dissociate, _ns(request), request.path_params["name"])
    return _no_content()


# ---- schemas ----------------------------------------------------------------------------------------


async def get_schema(request: Request) -> Response:
    caller(request)
    name = request.path_params["name"]
    if name not in schemas.NAMES:
        raise NotFound("The resource could not be found.")
    return JSONResponse(schemas.schema(name))


_NS = "/v2/metadefs/namespaces/{namespace}"

routes = [
    Route("/v2/metadefs/namespaces", list_namespaces, methods=["GET"]),
    Route("/v2/metadefs/namespaces", create_namespace, methods=["POST"]),
    Route(_NS, show_namespace, methods=["GET"]),
    Route(_NS, update_namespace, methods=["PUT"]),
    Route(_NS, delete_namespace, methods=["DELETE"]),
    Route(f"{_NS}/objects", list_objects, methods=["GET"]),
    Route(f"{_NS}/objects", create_object, methods=["POST"]),
    Route(f"{_NS}/objects", _delete_all("objects"), methods=["DELETE"]),
    Route(f"{_NS}/objects/{{name}}", show_object, methods=["GET"]),
    Route(f"{_NS}/objects/{{name}}", update_object, methods=["PUT"]),
    Route(f"{_NS}/objects/{{name}}", delete_object, methods=["DELETE"]),
    Route(f"{_NS}/properties", list_properties, methods=["GET"]),
    Route(f"{_NS}/properties", create_property, methods=["POST"]),
    Route(f"{_NS}/properties", _delete_all("properties"), methods=["DELETE"]),
    Route(f"{_NS}/properties/{{name}}", show_property, methods=["GET"]),
    Route(f"{_NS}/properties/{{name}}", update_property, methods=["PUT"]),
    Route(f"{_NS}/properties/{{name}}", delete_property, methods=["DELETE"]),
    Route(f"{_NS}/tags", list_tags, methods=["GET"]),
    Route(f"{_NS}/tags", create_tags, methods=["POST"]),
    Route(f"{_NS}/tags", _delete_all("tags"), methods=["DELETE"]),
    Route(f"{_NS}/tags/{{name}}", show_tag, methods=["GET"]),
    Route(f"{_NS}/tags/{{name}}", create_tag, methods=["POST"]),
    Route(f"{_NS}/tags/{{name}}", update_tag, methods=["PUT"]),
    Route(f"{_NS}/tags/{{name}}", delete_tag, methods=["DELETE"]),
    Route(f"{_NS}/resource_types", list_associations, methods=["GET"]),
    Route(f"{_NS}/resource_types", associate, methods=["POST"]),
    Route(f"{_NS}/resource_types/{{name}}", dissociate, methods=["DELETE"]),
    Route("/v2/metadefs/resource_types", list_resource_types, methods=["GET"]),
    Route("/v2/schemas/metadefs/{name}", get_schema, methods=["GET"]),
]
