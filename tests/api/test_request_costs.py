"""What a small request costs the database: the statements of an authenticated image show, and the
connections a worker opens under concurrent load (no more than its pool: none opened and closed
per request)."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import create
from tests.api.test_authentication import Statements
from tests.conftest import Caller, Callers, World

MOST_STATEMENTS = 3


def test_an_authenticated_image_show_runs_at_most_three_statements(
    api: Callers, db: Database, world: World
) -> None:
    image_id = create(api.alice, visibility="shared", tags=["a"], os_distro="debian")["id"]
    beta = world.projects["beta"]
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
    for caller in (api.alice, api.bob):
        # The first request validates the token (one statement), the next ones remember it.
        for _ in range(3):
            with Statements(db.engine) as request:
                shown = caller.get(f"/v2/images/{image_id}")
            assert shown.status_code == 200
            assert shown.json()["tags"] == ["a"] and shown.json()["os_distro"] == "debian"
            assert len(request.seen) <= MOST_STATEMENTS, request.seen
    # Remembered: one statement for the image (and one reading the identity generation when the
    # last read is more than 0.5 s old, as it may be on a slow machine).
    with Statements(db.engine) as request:
        assert api.alice.get(f"/v2/images/{image_id}").status_code == 200
    assert len([s for s in request.seen if "identity_generation" not in s]) == 1, request.seen


def test_concurrent_requests_open_no_more_connections_than_the_pool(settings: Settings, world: World) -> None:
    """64 clients at once against 4 threads: the pool (threads + 2) opens at most its size, and
    closes none of them."""
    settings = dataclasses.replace(settings, threads=4)
    db = Database(settings.database, connections=settings.database_connections)
    opened: list[Any] = []
    closed: list[Any] = []
    event.listen(db.engine, "connect", lambda *a: opened.append(a))
    event.listen(db.engine, "close", lambda *a: closed.append(a))
    app = create_app(settings, db=db, store=FilesystemStore(settings.blob_dir))
    try:
        with TestClient(app, base_url="http://127.0.0.1:9292") as client:
            alice = Caller(client, world.tokens["alice"])
            bob = Caller(client, world.tokens["bob"])
            image_id = create(alice)["id"]

            def work(i: int) -> list[int]:
                caller = alice if i % 2 else bob
                return [
                    caller.get(f"/v2/images/{image_id}").status_code,
                    caller.get("/v2/images").status_code,
                    # A write now and then: distinct tags, within the quota of 128.
                    alice.put(f"/v2/images/{image_id}/tags/t{i}").status_code if i < 100 else 204,
                ]

            with ThreadPoolExecutor(64) as pool:
                statuses = [s for result in pool.map(work, range(256)) for s in result]
        assert set(statuses) <= {200, 204, 404}, statuses
        assert 1 <= len(opened) <= settings.database_connections
        assert closed == []
    finally:
        db.dispose()
