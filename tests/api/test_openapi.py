"""docs/openapi.yaml describes every extension route, and only routes that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from starlette.routing import Route

from spyglass.api import extensions, webhooks
from spyglass.api.app import create_app
from spyglass.settings import Settings

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
    assert _operations(extensions.routes + webhooks.routes) <= described


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
