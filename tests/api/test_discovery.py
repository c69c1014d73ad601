"""Versions, schemas, info, the request id on every answer, and the two error body shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spyglass.images import schemas
from tests.conftest import Callers, reconfigure

# The order and statuses of 50-versions.http, exactly as Glance 33 answered.
RECORDED_VERSIONS = [
    ("v2.15", "SUPPORTED"),
    ("v2.13", "SUPPORTED"),
    ("v2.12", "SUPPORTED"),
    ("v2.11", "SUPPORTED"),
    ("v2.10", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.8", "SUPPORTED"),
    ("v2.17", "CURRENT"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
]
SCHEMA_DIR = Path(schemas.__file__).parent


def _versions(href: str) -> dict[str, object]:
    return {
        "versions": [
            {"id": v, "status": s, "links": [{"rel": "self", "href": href}]} for v, s in RECORDED_VERSIONS
        ]
    }


@pytest.mark.parametrize("token", [True, False])
def test_root_answers_300_with_the_recorded_versions(api: Callers, token: bool) -> None:
    caller = api.alice if token else api.anonymous
    response = caller.get("/")
    assert response.status_code == 300
    assert response.headers["content-type"] == "application/json"
    assert response.json() == _versions("http://127.0.0.1:9292/v2/")


def test_versions_under_the_image_prefix(api: Callers) -> None:
    response = api.anonymous.get("/image/")
    assert response.status_code == 300
    assert response.json() == _versions("http://127.0.0.1:9292/image/v2/")


def test_versions_follow_the_public_url(api: Callers) -> None:

    reconfigure(api.alice.client, public_url="https://images.example.com/")
    assert api.anonymous.get("/").json() == _versions("https://images.example.com/v2/")


@pytest.mark.parametrize("path", ["/versions", "/v2", "/v2/"])
def test_other_version_documents_200(api: Callers, path: str) -> None:
    response = api.anonymous.get(path)
    assert response.status_code == 200
    assert response.json() == _versions("http://127.0.0.1:9292/v2/")


@pytest.mark.parametrize("name", ["image", "images", "member", "members"])
def test_schemas_are_the_packaged_json(api: Callers, name: str) -> None:
    response = api.alice.get(f"/v2/schemas/{name}")
    assert response.status_code == 200
    assert response.json() == json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    assert "x-openstack-request-id" in response.headers


def test_unknown_schema_404_and_schemas_need_a_token(api: Callers) -> None:
    response = api.alice.get("/v2/schemas/nothing")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"
    assert api.anonymous.get("/v2/schemas/image").status_code == 401
    assert api.anonymous.get("/v2/schemas/nothing").status_code == 401


def test_info_import(api: Callers) -> None:
    response = api.alice.get("/v2/info/import")
    assert response.status_code == 200
    body = response.json()
    assert body["import-methods"]["description"] == "Import methods available."
    assert body["import-methods"]["type"] == "array"
    # The methods Spyglass implements; not copy-image (there is one store).
    assert body["import-methods"]["value"] == ["glance-direct", "web-download", "copy-image"]


def test_info_stores(api: Callers) -> None:
    response = api.alice.get("/v2/info/stores")
    assert response.status_code == 200
    assert response.json() == {"stores": [{"id": "fs", "default": "true"}]}


def test_info_needs_a_token(api: Callers) -> None:
    assert api.anonymous.get("/v2/info/import").status_code == 401
    assert api.anonymous.get("/v2/info/stores").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/images", 200),
        ("GET", "/v2/images/00000000-0000-0000-0000-000000000000", 404),
        ("GET", "/v2/nothing/here", 404),
        ("DELETE", "/v2/images", 405),
        ("POST", "/v2/images", 400),
        ("GET", "/", 300),
    ],
)
def test_request_id_on_every_answer(api: Callers, method: str, path: str, status: int) -> None:
    response = api.alice.request(method, path)
    assert response.status_code == status
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_request_ids_differ(api: Callers) -> None:
    first = api.alice.get("/v2/images").headers["x-openstack-request-id"]
    assert api.alice.get("/v2/images").headers["x-openstack-request-id"] != first


def test_error_body_json_when_asked(api: Callers) -> None:
    response = api.alice.get("/v2/images/00000000-0000-0000-0000-000000000000")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "message": "No image found with ID 00000000-0000-0000-0000-000000000000<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found",
    }


def test_error_body_html_otherwise_as_glance(api: Callers) -> None:
    image_id = "00000000-0000-0000-0000-000000000000"
    response = api.alice.get(f"/v2/images/{image_id}", headers={"Accept": "*/*"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (
        "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n"
        f"  No image found with ID {image_id}<br /><br />\n\n\n\n </body>\n</html>"
    )


def test_html_error_escapes_what_the_client_sent(api: Callers) -> None:
    response = api.alice.request(
        "PATCH",
        "/v2/images/00000000-0000-0000-0000-000000000000",
        headers={"Accept": "text/html", "Content-Type": "text/<script>"},
        content=b"[]",
    )
    assert response.status_code == 415
    assert "<script>" not in response.text
    assert "text/&lt;script&gt;" in response.text


def test_unauthenticated_error_is_keystone_shaped(api: Callers) -> None:
    response = api.anonymous.get("/v2/images")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Keystone uri=")
    assert response.json()["error"]["code"] == 401
