"""docs/openapi.yaml describes every extension route, and only routes that exist."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from starlette.routing import Route
from starlette.testclient import TestClient

from spyglass.api import deprecation, extensions, member_extensions, trust, webhooks
from spyglass.api.app import create_app
from spyglass.blobs import MemoryStore
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.conftest import World

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def _operations(routes: list[Any]) -> set[tuple[str, str]]:
    return {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_extension_route_is_described() -> None:
    paths = _document()["paths"]
    described = {(path, method) for path, item in paths.items() for method in item}
    routes = (
        extensions.routes + webhooks.routes + trust.routes + member_extensions.routes + deprecation.routes
    )
    assert _operations(routes) <= described


def test_every_described_operation_exists(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    served = _operations(list(app.routes))
    for path, item in _document()["paths"].items():
        for method in item:
            assert (path, method) in served, (path, method)


def test_references_resolve() -> None:
    document = _document()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                target: Any = document
                for part in ref.removeprefix("#/").split("/"):
                    target = target[part]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert document["openapi"].startswith("3.")


UNKNOWN = "00000000-0000-4000-8000-000000000000"
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def _probes(method: str, url: str) -> list[dict[str, Any]]:
    """Requests that reach each answer a documented operation gives without a working image:
    no token, unknown ids, and for operations with a body, a malformed, an oversized and a
    wrongly typed one."""
    probes: list[dict[str, Any]] = [{"token": False}, {}]
    if method in ("post", "patch", "put"):
        json_type = PATCH_TYPE if method == "patch" else "application/json"
        probes += [
            {"content": b"{not json", "content_type": json_type},
            {"content": b"[" + b"1," * 1024 + b"1]", "content_type": json_type},
            {"content": b"{}", "content_type": "text/plain"},
        ]
    return probes


def test_every_answer_an_operation_gives_is_described(settings: Settings, db: Database, world: World) -> None:
    small = dataclasses.replace(settings, max_request_body_bytes=1024)
    app = create_app(small, db=db, store=MemoryStore())
    missing = []
    with TestClient(app, base_url="http://127.0.0.1:9292") as client:
        for path, item in _document()["paths"].items():
            url = path.replace("{image_id}", UNKNOWN).replace("{webhook_id}", UNKNOWN)
            url = url.replace("{rule_id}", UNKNOWN)
            url = url.replace("{member_id}", world.projects["beta"])
            for method, operation in item.items():
                for probe in _probes(method, url):
                    headers = {"Accept": "application/json"}
                    if probe.get("token", True):
                        headers["X-Auth-Token"] = world.tokens["alice"]
                    if "content_type" in probe:
                        headers["Content-Type"] = probe["content_type"]
                    response = client.request(method, url, headers=headers, content=probe.get("content"))
                    if str(response.status_code) not in operation["responses"]:
                        missing.append((method, path, response.status_code))
    assert missing == [], "\n".join(map(str, missing))


def test_error_bodies_are_described_in_both_forms() -> None:
    error = _document()["components"]["responses"]["Error"]["content"]
    assert set(error) == {"application/json", "text/html"}
