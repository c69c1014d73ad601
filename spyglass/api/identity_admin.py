"""Identity API v3 administrative resources: domains, projects, users, roles, assignments.

Handlers authenticate the caller, hand the request to spyglass.identity.directory or
spyglass.identity.grants in a worker thread and render the result the way Keystone does: entities
wrapped in their singular name with a `links.self`, collections with `links` {self, previous, next},
deletes as 204.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from spyglass.identity import directory, grants
from spyglass.web import JSONResponse, app_state, base_url, caller, json_body

T = TypeVar("T")
# Identity requests are small: Keystone itself refuses bodies past 112 KiB (oslo.middleware's
# max_request_body_size), and the token request is unauthenticated, so anyone can send one.
BODY_MAX = 112 * 1024
Row = dict[str, Any]


async def _call(request: Request, service: Callable[..., T], *args: Any, body: bool = False) -> T:
    """Authenticate first (a 401 beats a 400), then run the service function off the event loop."""
    ctx = caller(request)
    if body:
        args = (*args, await json_body(request, at_most=BODY_MAX))
    return await run_in_threadpool(service, app_state(request).db, ctx, *args)


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


# ---- rendering --------------------------------------------------------------------------------


def _url(request: Request, *parts: str) -> str:
    return "/".join((f"{base_url(request)}/v3", *parts))


def _collection_links(request: Request, *parts: str) -> dict[str, str | None]:
    query = request.url.query
    self_link = _url(request, *parts) + (f"?{query}" if query else "")
    return {"self": self_link, "previous": None, "next": None}


# Fields Keystone always shows that Spyglass does not store: hierarchy, tags, resource options.
EXTRA: dict[str, Callable[[Row], Row]] = {
    "domain": lambda row: {"tags": [], "options": {}},
    "project": lambda row: {"parent_id": row["domain_id"], "is_domain": False, "tags": [], "options": {}},
    "user": lambda row: {"password_expires_at": None, "options": {}},
    "role": lambda row: {"domain_id": None, "options": {}},
}


def _entity(request: Request, kind: str, row: Row) -> Row:
    return {**row, **EXTRA[kind](row), "links": {"self": _url(request, f"{kind}s", row["id"])}}


def _one(request: Request, kind: str, row: Row, status_code: int = 200) -> Response:
    return JSONResponse({kind: _entity(request, kind, row)}, status_code=status_code)


def _collection(request: Request, name: str, items: list[Row], *path: str) -> Response:
    """A listing the way Keystone renders one: the items under `name`, then the links."""
    return JSONResponse({name: items, "links": _collection_links(request, *(path or (name,)))})


def _many(request: Request, kind: str, rows: list[Row], *path: str) -> Response:
    return _collection(request, f"{kind}s", [_entity(request, kind, r) for r in rows], *path)


def _no_content() -> Response:
    return Response(status_code=204)


# ---- domains, projects, users and roles: the same five routes each -----------------------------


@dataclass(frozen=True)
class Resource:
    kind: str
    list: Callable[..., list[Row]]
    get: Callable[..., Row]
    create: Callable[..., Row]
    update: Callable[..., Row]
    delete: Callable[..., None]


def _crud_routes(res: Resource) -> list[BaseRoute]:
    async def listing(request: Request) -> Response:
        return _many(request, res.kind, await _call(request, res.list, _query(request)))

    async def create(request: Request) -> Response:
        return _one(request, res.kind, await _call(request, res.create, body=True), 201)

    async def show(request: Request) -> Response:
        return _one(request, res.kind, await _call(request, res.get, request.path_params["id"]))

    async def update(request: Request) -> Response:
        return _one(request, res.kind, await _call(request, res.update, request.path_params["id"], body=True))

    async def remove(request: Request) -> Response:
        await _call(request, res.delete, request.path_params["id"])
        return _no_content()

    return [
        Route(f"/v3/{res.kind}s", listing, methods=["GET"]),
        Route(f"/v3/{res.kind}s", create, methods=["POST"]),
        Route(f"/v3/{res.kind}s/{{id}}", show, methods=["GET"]),
        Route(f"/v3/{res.kind}s/{{id}}", update, methods=["PATCH"]),
        Route(f"/v3/{res.kind}s/{{id}}", remove, methods=["DELETE"]),
    ]


RESOURCES = (
    Resource(
        "domain",
        directory.list_domains,
        directory.get_domain,
        directory.create_domain,
        directory.update_domain,
        directory.delete_domain,
    ),
    Resource(
        "project",
        directory.list_projects,
        directory.get_project,
        directory.create_project,
        directory.update_project,
        directory.delete_project,
    ),
    Resource(
        "user",
        directory.list_users,
        directory.get_user,
        directory.create_user,
        directory.update_user,
        directory.delete_user,
    ),
    Resource(
        "role", grants.list_roles, grants.get_role, grants.create_role, grants.update_role, grants.delete_role
    ),
)

# ---- what a user may reach --------------------------------------------------------------------


async def user_projects(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    rows = await _call(request, directory.list_user_projects, user_id, _query(request))
    return _many(request, "project", rows, "users", user_id, "projects")


async def change_password(request: Request) -> Response:
    await _call(request, directory.change_password, request.path_params["user_id"], body=True)
    return _no_content()


async def auth_projects(request: Request) -> Response:
    return _many(request, "project", await _call(request, directory.auth_projects), "auth", "projects")


async def auth_domains(request: Request) -> Response:
    return _many(request, "domain", await _call(request, directory.auth_domains), "auth", "domains")


# ---- implied roles ----------------------------------------------------------------------------


def _role_ref(request: Request, role: Row) -> Row:
    return {"id": role["id"], "name": role["name"], "links": {"self": _url(request, "roles", role["id"])}}


def _inference(request: Request, rule: grants.Inference) -> Row:
    return {
        "prior_role": _role_ref(request, rule.prior),
        "implies": [_role_ref(request, r) for r in rule.implied],
    }


def _single_inference(request: Request, rule: grants.Inference, status_code: int = 200) -> Response:
    body = {
        "role_inference": {**_inference(request, rule), "implies": _role_ref(request, rule.implied[0])},
        "links": {"self": _url(request, "roles", rule.prior["id"], "implies", rule.implied[0]["id"])},
    }
    return JSONResponse(body, status_code=status_code)


async def role_inferences(request: Request) -> Response:
    rules = await _call(request, grants.list_role_inferences)
    return _collection(request, "role_inferences", [_inference(request, r) for r in rules])


async def implied_roles(request: Request) -> Response:
    prior_id = request.path_params["prior_id"]
    rule = await _call(request, grants.list_implied_roles, prior_id)
    body = {
        "role_inference": _inference(request, rule),
        "links": {"self": _url(request, "roles", prior_id, "implies")},
    }
    return JSONResponse(body)


def _pair(request: Request) -> tuple[str, str]:
    return request.path_params["prior_id"], request.path_params["implied_id"]


async def create_implied_role(request: Request) -> Response:
    return _single_inference(request, await _call(request, grants.create_implied_role, *_pair(request)), 201)


async def get_implied_role(request: Request) -> Response:
    return _single_inference(request, await _call(request, grants.get_implied_role, *_pair(request)))


async def check_implied_role(request: Request) -> Response:
    await _call(request, grants.get_implied_role, *_pair(request))
    return _no_content()


async def delete_implied_role(request: Request) -> Response:
    await _call(request, grants.delete_implied_role, *_pair(request))
    return _no_content()


# ---- grants: /v3/{projects|domains}/{id}/users/{user_id}/roles[/{role_id}] --------------------------


def _grant_routes(scope: str) -> list[BaseRoute]:
    def parts(request: Request) -> tuple[str, ...]:
        p = request.path_params
        return (scope, p["scope_id"], p["user_id"], *([p["role_id"]] if "role_id" in p else []))

    async def listing(request: Request) -> Response:
        rows = await _call(request, grants.list_grants, *parts(request))
        _, scope_id, user_id = parts(request)
        return _many(request, "role", rows, f"{scope}s", scope_id, "users", user_id, "roles")

    def action(service: Callable[..., None]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            await _call(request, service, *parts(request))
            return _no_content()

        return handler

    base = f"/v3/{scope}s/{{scope_id}}/users/{{user_id}}/roles"
    return [
        Route(base, listing, methods=["GET"]),
        Route(f"{base}/{{role_id}}", action(grants.create_grant), methods=["PUT"]),
        Route(f"{base}/{{role_id}}", action(grants.check_grant), methods=["GET", "HEAD"]),
        Route(f"{base}/{{role_id}}", action(grants.revoke_grant), methods=["DELETE"]),
    ]


# ---- role assignments -------------------------------------------------------------------------


def _assignment(request: Request, found: grants.Assignment) -> Row:
    granted = found.prior_role_id or found.role["id"]
    target = (f"{found.scope}s", found.target["id"], "users", found.user["id"], "roles", granted)
    links = {"assignment": _url(request, *target)}
    if found.prior_role_id:
        links["prior_role"] = _url(request, "roles", found.prior_role_id)
    return {"links": links, "scope": {found.scope: found.target}, "user": found.user, "role": found.role}


async def role_assignments(request: Request) -> Response:
    found = await _call(request, grants.list_role_assignments, _query(request))
    return _collection(request, "role_assignments", [_assignment(request, a) for a in found])


def _routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [route for res in RESOURCES for route in _crud_routes(res)]
    table += [
        Route("/v3/users/{user_id}/projects", user_projects, methods=["GET"]),
        Route("/v3/users/{user_id}/password", change_password, methods=["POST"]),
        Route("/v3/auth/projects", auth_projects, methods=["GET"]),
        Route("/v3/auth/domains", auth_domains, methods=["GET"]),
        Route("/v3/role_inferences", role_inferences, methods=["GET"]),
        Route("/v3/roles/{prior_id}/implies", implied_roles, methods=["GET"]),
        # HEAD first: a GET route would also answer HEAD, with 200 rather than Keystone's 204.
        Route("/v3/roles/{prior_id}/implies/{implied_id}", check_implied_role, methods=["HEAD"]),
        Route("/v3/roles/{prior_id}/implies/{implied_id}", get_implied_role, methods=["GET"]),
        Route("/v3/roles/{prior_id}/implies/{implied_id}", create_implied_role, methods=["PUT"]),
        Route("/v3/roles/{prior_id}/implies/{implied_id}", delete_implied_role, methods=["DELETE"]),
        *_grant_routes("project"),
        *_grant_routes("domain"),
        Route("/v3/role_assignments", role_assignments, methods=["GET"]),
    ]
    return table


routes: list[BaseRoute] = _routes()
