"""x-openstack-request-id: the caller's well-formed global id is answered, on every response."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.helpers import create
from tests.conftest import Callers

GLOBAL = "req-7d8e9f00-1a2b-4c3d-9e8f-0123456789ab"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/images", 200),
        ("GET", "/v2/images/00000000-0000-0000-0000-000000000000", 404),
        ("DELETE", "/v2/images", 405),
        ("POST", "/v2/images", 400),
        ("GET", "/", 300),
        ("GET", "/identity/v3", 200),
    ],
)
def test_the_global_id_is_answered(api: Callers, method: str, path: str, status: int) -> None:
    response = api.alice.request(method, path, headers={"X-OpenStack-Request-ID": GLOBAL})
    assert response.status_code == status
    assert response.headers["x-openstack-request-id"] == GLOBAL


def test_a_refused_token_is_answered_with_the_global_id(api: Callers) -> None:
    response = api.anonymous.get("/v2/images", headers={"X-OpenStack-Request-ID": GLOBAL})
    assert response.status_code == 401
    assert response.headers["x-openstack-request-id"] == GLOBAL


def test_every_page_of_a_list_answers_the_global_id(api: Callers) -> None:
    for n in range(3):
        create(api.alice, name=f"page-{n}")
    url, pages = "/v2/images?limit=1", 0
    while url:
        response = api.alice.get(url, headers={"X-OpenStack-Request-ID": GLOBAL})
        assert response.status_code == 200
        assert response.headers["x-openstack-request-id"] == GLOBAL
        url, pages = response.json().get("next", ""), pages + 1
    assert pages >= 3


@pytest.mark.parametrize(
    "header", ["req-123", "7d8e9f00-1a2b-4c3d-9e8f-0123456789ab", GLOBAL.upper(), "x" * 300]
)
def test_a_malformed_id_is_ignored(api: Callers, header: str) -> None:
    response = api.alice.get("/v2/images", headers={"X-OpenStack-Request-ID": header})
    answered = response.headers["x-openstack-request-id"]
    assert answered != header
    assert answered.startswith("req-")
    assert len(answered) == len(GLOBAL)


def test_the_ids_stay_for_the_servers_log_of_a_failed_request() -> None:
    from spyglass import request_ids
    from spyglass.api.app import RequestIdMiddleware

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "headers": [(b"x-openstack-request-id", GLOBAL.encode())]}

    async def serve_one() -> request_ids.RequestIds | None:
        # What uvicorn does: run the request in a task of its own and log what it raises.
        try:
            await RequestIdMiddleware(failing)(scope, receive, send)
        except RuntimeError:
            return request_ids.current.get()
        return None

    # asyncio.run runs it in a task of its own, as uvicorn runs each request.
    seen = asyncio.run(serve_one())
    assert seen is not None and seen.global_id == GLOBAL
    assert request_ids.current.get() is None
