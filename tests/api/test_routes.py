"""Paths with a trailing slash or an empty id name no resource: 404, as Glance answers
`GET /v2/images/` and `DELETE /v2/images/` (issue 14, recorded Glance 33), never the list, a
redirect to it or 405. The paths are made from every image API route the application has, so a new
route is checked as soon as it exists; at the root and under /image."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from tests.api.helpers import active
from tests.conftest import Callers, World

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
PARAMETER = re.compile(r"\{([a-z_]+)(:[a-z]+)?\}")


def _fill(template: str, values: dict[str, str], empty: str = "") -> str:
    return PARAMETER.sub(lambda m: "" if m.group(1) == empty else values.get(m.group(1), "x"), template)


def _nameless_paths(api: Callers, values: dict[str, str]) -> set[str]:
    templates = {
        route.path
        for route in api.alice.client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/v2/")
    }
    paths = set()
    for template in templates:
        paths.add(_fill(template, values) + "/")
        for name in PARAMETER.findall(template):
            paths.add(_fill(template, values, empty=name[0]))
    # Paths that are routes of their own ("/v2" has "/v2/").
    return {path for path in paths if path not in templates}


@pytest.mark.parametrize("prefix", ["", "/image"])
def test_empty_ids_and_trailing_slashes_are_404(api: Callers, world: World, prefix: str) -> None:
    image_id = active(api.alice, visibility="shared")["id"]
    member = world.projects["beta"]
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": member}).status_code == 200
    values = {"image_id": image_id, "member_id": member, "store_id": "fs", "name": "image", "tag": "t"}
    paths = _nameless_paths(api, values)
    assert {"/v2/images/", f"/v2/images/{image_id}/", "/v2/images//members"} <= paths
    answers = {
        (method, path): api.alice.request(method, prefix + path, follow_redirects=False).status_code
        for path in sorted(paths)
        for method in METHODS
    }
    assert {key: status for key, status in answers.items() if status != 404} == {}
    # Nothing was changed on the way.
    assert api.alice.get(f"{prefix}/v2/images/{image_id}").status_code == 200
    assert api.alice.get(f"{prefix}/v2/images/{image_id}/members").json()["members"] != []


def test_the_routes_without_the_slash_still_answer(api: Callers) -> None:
    assert api.alice.get("/v2/images").status_code == 200
    assert api.alice.get("/image/v2/images").status_code == 200
    # The version documents keep their bare and slashed forms.
    assert api.alice.get("/v2/").status_code == 200
    assert api.alice.get("/image/v2/").status_code == 200
