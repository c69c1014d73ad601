"""The image cache in front of the real Swift of tests/blobs/conftest.py: a download fills it, the
next is served from it, and concurrent downloads of an uncached image all get the image's bytes
while the cache ends up with one whole, verified copy."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs.registry import StoreSet
from spyglass.blobs.swift import SwiftStore
from spyglass.data.cache import ImageCache
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import active
from tests.blobs import conftest as blobs
from tests.conftest import Callers, World

saio = blobs.saio
make_swift_store = blobs.make_swift_store

MiB = 1024 * 1024
DATA = os.urandom(6 * MiB + 123)
DOWNLOADS = 6


@pytest.fixture
def client(
    settings: Settings, db: Database, make_swift_store: Callable[..., SwiftStore]
) -> Iterator[TestClient]:
    cached = dataclasses.replace(settings, image_cache=True)
    stores = StoreSet.single(make_swift_store(name="swift"))
    with TestClient(create_app(cached, db=db, stores=stores), base_url="http://127.0.0.1:9292") as client:
        yield client


@pytest.fixture
def api(client: TestClient, world: World) -> Callers:
    return Callers(client, world)


def test_concurrent_downloads_of_an_uncached_image_fill_one_copy(api: Callers, client: TestClient) -> None:
    cache: ImageCache = client.app.state.spyglass.image_cache  # type: ignore[attr-defined]
    image_id = active(api.alice, DATA)["id"]
    start = threading.Barrier(DOWNLOADS)
    got: list[bytes] = []

    def download() -> None:
        start.wait()
        got.append(api.alice.get(f"/v2/images/{image_id}/file").content)

    threads = [threading.Thread(target=download) for _ in range(DOWNLOADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == DOWNLOADS and all(body == DATA for body in got)
    assert cache.file(image_id).read_bytes() == DATA
    assert list(cache.incomplete.iterdir()) == []
    (entry,) = api.admin.get("/v2/cache").json()["cached_images"]
    assert (entry["image_id"], entry["size"]) == (image_id, len(DATA))
    # The next one comes from the cache.
    hits = entry["hits"]
    ranged = api.alice.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=5000000-"})
    assert ranged.status_code == 206 and ranged.content == DATA[5000000:]
    assert api.admin.get("/v2/cache").json()["cached_images"][0]["hits"] == hits + 1
