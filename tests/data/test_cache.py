"""The image cache (spyglass.data.cache) behind the Images API, over the in-memory store (a store
that is not local, as Swift and S3 are): downloads fill it and are then served from it, least
recently used eviction within the size limit, what is never cached or served, and `/v2/cache` as
Glance 33 answers it (glance/api/v2/cached_images.py, glance/tests/functional/v2/test_cache_api.py,
api-ref "Cache Manage"). The real Swift runs under tests/data/test_cache_swift.py and tests/e2e."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore, MemoryStore
from spyglass.blobs.registry import StoreSet
from spyglass.data import cache as image_cache
from spyglass.data.cache import ImageCache
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import active, create, md5, message
from tests.api.test_dashboard import csrf, log_in
from tests.conftest import Callers, World

KiB = 1024
SIZE = 100 * KiB


def data(tag: int, size: int = SIZE) -> bytes:
    return bytes([tag]) * 16 + os.urandom(size - 16)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def cached_settings(settings: Settings) -> Settings:
    # Room for two and a half images of SIZE.
    return dataclasses.replace(settings, image_cache=True, image_cache_max_size=SIZE * 5 // 2)


@pytest.fixture
def client(cached_settings: Settings, db: Database, store: MemoryStore) -> Iterator[TestClient]:
    # Without its lifespan (`with client` starts it): no background round fills the queue, unless
    # a test starts them.
    test_client = TestClient(
        create_app(cached_settings, db=db, store=store), base_url="http://127.0.0.1:9292"
    )
    yield test_client
    test_client.close()


@pytest.fixture
def api(client: TestClient, world: World) -> Callers:
    return Callers(client, world)


@pytest.fixture
def cache(client: TestClient) -> ImageCache:
    found: ImageCache = client.app.state.spyglass.image_cache  # type: ignore[attr-defined]
    return found


def cached_ids(api: Callers) -> list[str]:
    listing = api.admin.get("/v2/cache").json()
    return sorted(entry["image_id"] for entry in listing["cached_images"])


def uploaded(api: Callers, payload: bytes, **body: Any) -> str:
    return str(active(api.alice, payload, **body)["id"])


def test_a_download_fills_the_cache_and_the_next_one_is_served_from_it(
    api: Callers, cache: ImageCache, store: MemoryStore
) -> None:
    payload = data(1)
    image_id = uploaded(api, payload)
    assert cached_ids(api) == []
    assert api.alice.get(f"/v2/images/{image_id}/file").content == payload
    assert cached_ids(api) == [image_id]
    assert cache.file(image_id).read_bytes() == payload
    # The store loses the blob behind our back: only the cache can still answer.
    store.blobs = {key: b"x" * SIZE for key in store.blobs}
    response = api.alice.get(f"/v2/images/{image_id}/file")
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["content-md5"] == md5(payload)
    (entry,) = api.admin.get("/v2/cache").json()["cached_images"]
    assert entry["hits"] == 1 and entry["size"] == SIZE
    assert entry["last_accessed"] >= entry["last_modified"] > time.time() - 60


def test_ranges_of_a_cached_image_come_from_the_cache(api: Callers, store: MemoryStore) -> None:
    payload = data(2)
    image_id = uploaded(api, payload)
    # A range of an uncached image does not fill the cache (only whole downloads do).
    response = api.alice.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=10-19"})
    assert (response.status_code, response.content) == (206, payload[10:20])
    assert cached_ids(api) == []
    api.alice.get(f"/v2/images/{image_id}/file")
    store.blobs = {key: b"x" * SIZE for key in store.blobs}
    response = api.alice.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=-500"})
    assert response.status_code == 206
    assert response.content == payload[-500:]
    assert response.headers["content-range"] == f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}"


def test_least_recently_used_images_go_first_within_the_size_limit(api: Callers, cache: ImageCache) -> None:
    first, second, third = (uploaded(api, data(tag)) for tag in (1, 2, 3))
    for image_id in (first, second):
        api.alice.get(f"/v2/images/{image_id}/file")
    time.sleep(0.01)
    api.alice.get(f"/v2/images/{first}/file")  # a hit: `second` is now the least recently used
    api.alice.get(f"/v2/images/{third}/file")
    assert cached_ids(api) == sorted([first, third])
    assert not cache.file(second).exists()
    held = [p for p in cache.root.iterdir() if p.is_file() and p.name != "cache.db" and "-" in p.name]
    assert sum(p.stat().st_size for p in held) <= SIZE * 5 // 2


def test_an_image_larger_than_the_cache_is_not_cached(api: Callers) -> None:
    image_id = uploaded(api, data(4, SIZE * 3))
    assert len(api.alice.get(f"/v2/images/{image_id}/file").content) == SIZE * 3
    assert cached_ids(api) == []


def test_a_truncated_cache_file_is_detected_and_fetched_again(api: Callers, cache: ImageCache) -> None:
    payload = data(5)
    image_id = uploaded(api, payload)
    api.alice.get(f"/v2/images/{image_id}/file")
    with cache.file(image_id).open("r+b") as handle:
        handle.truncate(SIZE // 2)
    # Served whole from the store, and the cache filled again on the way.
    assert api.alice.get(f"/v2/images/{image_id}/file").content == payload
    assert cache.file(image_id).read_bytes() == payload
    assert cached_ids(api) == [image_id]


def test_a_cache_file_that_went_missing_is_fetched_again(api: Callers, cache: ImageCache) -> None:
    payload = data(6)
    image_id = uploaded(api, payload)
    api.alice.get(f"/v2/images/{image_id}/file")
    cache.file(image_id).unlink()
    assert api.alice.get(f"/v2/images/{image_id}/file").content == payload
    assert cache.file(image_id).read_bytes() == payload


def test_a_cache_that_fails_never_fails_the_download(api: Callers, cache: ImageCache) -> None:
    payload = data(29)
    image_id = uploaded(api, payload)
    api.alice.get(f"/v2/images/{image_id}/file")
    shutil.rmtree(cache.root)  # its disk gone: no index, no files, nowhere to write
    for _ in range(2):
        response = api.alice.get(f"/v2/images/{image_id}/file")
        assert (response.status_code, response.content) == (200, payload)


def test_bytes_that_do_not_match_the_image_are_not_cached(
    api: Callers, cache: ImageCache, store: MemoryStore
) -> None:
    image_id = uploaded(api, data(7))
    (key,) = store.blobs
    store.blobs[key] = data(8)  # same size, other bytes: the store is corrupt
    api.alice.get(f"/v2/images/{image_id}/file")
    assert cached_ids(api) == []
    assert list(cache.incomplete.iterdir()) == []


def test_a_short_read_is_not_cached(cache: ImageCache, api: Callers) -> None:
    payload = data(9)
    image_id = uploaded(api, payload)
    record = _record(api, image_id)
    fill = cache.filler(record)
    assert fill is not None
    assert b"".join(fill.tee([payload[: SIZE // 2]])) == payload[: SIZE // 2]
    assert cache.lookup(record) is None
    assert list(cache.incomplete.iterdir()) == []


def test_an_abandoned_fill_leaves_nothing(cache: ImageCache, api: Callers) -> None:
    payload = data(10)
    image_id = uploaded(api, payload)
    record = _record(api, image_id)
    fill = cache.filler(record)
    assert fill is not None
    chunks = fill.tee([payload[:1000], payload[1000:]])
    next(chunks)
    chunks.close()  # the client went away after the first chunk
    assert cache.lookup(record) is None
    assert list(cache.incomplete.iterdir()) == []


def test_one_fill_per_image_at_a_time(cache: ImageCache, api: Callers) -> None:
    payload = data(11)
    record = _record(api, uploaded(api, payload))
    first = cache.filler(record)
    assert first is not None
    assert cache.filler(record) is None  # a second download streams without filling
    assert b"".join(first.tee([payload])) == payload
    assert cache.lookup(record) is not None
    # Once installed, a new fill starts from a fresh file, never the installed one.
    again = cache.filler(record)
    assert again is not None
    again.abort()
    assert cache.file(record.id).read_bytes() == payload


def _record(api: Callers, image_id: str) -> Any:
    from spyglass.images.queries import fetch_image

    db: Database = api.admin.client.app.state.spyglass.db  # type: ignore[attr-defined]
    with db.read() as conn:
        return fetch_image(conn, image_id, None)


def test_deleting_the_image_evicts_it(api: Callers, cache: ImageCache) -> None:
    image_id = uploaded(api, data(12))
    api.alice.get(f"/v2/images/{image_id}/file")
    assert cache.file(image_id).exists()
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert cached_ids(api) == []
    assert not cache.file(image_id).exists()


def test_deleting_the_image_from_the_dashboard_evicts_it(
    client: TestClient, api: Callers, cache: ImageCache
) -> None:
    image_id = uploaded(api, data(30))
    alice = log_in(client, "alice")
    assert alice.get(f"/dashboard/images/{image_id}/file").status_code == 200
    assert cached_ids(api) == [image_id]
    deleted = alice.post(f"/dashboard/images/{image_id}/delete", data={"csrf_token": csrf(alice)})
    assert deleted.status_code == 303
    assert cached_ids(api) == [] and not cache.file(image_id).exists()


def test_an_image_put_in_the_recycle_bin_is_evicted_and_refilled_after_restore(
    cached_settings: Settings, db: Database, world: World, store: MemoryStore
) -> None:
    kept = dataclasses.replace(cached_settings, recycle_retention_days=1)
    with TestClient(create_app(kept, db=db, store=store), base_url="http://127.0.0.1:9292") as client:
        api = Callers(client, world)
        payload = data(28)
        image_id = uploaded(api, payload)
        api.alice.get(f"/v2/images/{image_id}/file")
        assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
        assert cached_ids(api) == []
        assert api.alice.post(f"/v2/images/{image_id}/actions/restore").status_code in (200, 204)
        assert api.alice.get(f"/v2/images/{image_id}/file").content == payload
        assert cached_ids(api) == [image_id]


def test_an_image_deleted_on_another_node_is_evicted_by_the_reconcile_round(
    api: Callers, cache: ImageCache, cached_settings: Settings, db: Database, world: World, store: MemoryStore
) -> None:
    image_id = uploaded(api, data(13))
    api.alice.get(f"/v2/images/{image_id}/file")
    other_node = dataclasses.replace(cached_settings, image_cache_dir=str(cached_settings.data_dir / "node2"))
    with TestClient(create_app(other_node, db=db, store=store), base_url="http://127.0.0.1:9292") as node2:
        assert Callers(node2, world).alice.delete(f"/v2/images/{image_id}").status_code == 204
    # Never served meanwhile: the download looks at the image first.
    assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 404
    assert image_cache.reconcile(cache, db) == 1
    assert cached_ids(api) == [] and not cache.file(image_id).exists()


def test_a_project_that_cannot_see_the_image_cannot_get_it_from_the_cache(api: Callers) -> None:
    image_id = uploaded(api, data(14))
    api.alice.get(f"/v2/images/{image_id}/file")
    assert cached_ids(api) == [image_id]
    assert api.bob.get(f"/v2/images/{image_id}/file").status_code == 404
    assert api.anonymous.get(f"/v2/images/{image_id}/file").status_code == 401


def test_a_deactivated_image_is_not_served_from_the_cache_to_non_admins(api: Callers) -> None:
    payload = data(15)
    image_id = uploaded(api, payload)
    api.alice.get(f"/v2/images/{image_id}/file")
    assert api.alice.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 403
    assert api.admin.get(f"/v2/images/{image_id}/file").content == payload


def test_images_in_a_local_store_are_not_cached(
    cached_settings: Settings, db: Database, world: World
) -> None:
    app = create_app(cached_settings, db=db, store=FilesystemStore(cached_settings.blob_dir))
    with TestClient(app, base_url="http://127.0.0.1:9292") as client:
        api = Callers(client, world)
        image_id = uploaded(api, data(16))
        api.alice.get(f"/v2/images/{image_id}/file")
        assert cached_ids(api) == []


# /v2/cache


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/cache"), ("PUT", "/v2/cache/{id}"), ("DELETE", "/v2/cache/{id}"), ("DELETE", "/v2/cache")],
)
def test_the_cache_api_is_for_admins(api: Callers, method: str, path: str) -> None:
    image_id = uploaded(api, data(17))
    response = api.alice.request(method, path.format(id=image_id))
    assert response.status_code == 403
    assert api.anonymous.request(method, path.format(id=image_id)).status_code == 401


def test_queueing_an_image_another_project_cannot_see_is_404_to_it(api: Callers) -> None:
    image_id = uploaded(api, data(18))
    assert api.bob.put(f"/v2/cache/{image_id}").status_code == 404
    assert api.bob.delete(f"/v2/cache/{image_id}").status_code == 404


def test_queue_then_the_background_round_caches_it(
    client: TestClient, api: Callers, cache: ImageCache
) -> None:
    payload = data(19)
    image_id = uploaded(api, payload)
    assert api.admin.put(f"/v2/cache/{image_id}").status_code == 202
    assert api.admin.get("/v2/cache").json() == {"cached_images": [], "queued_images": [image_id]}
    with client:  # the background rounds run
        deadline = time.monotonic() + 20
        while cached_ids(api) != [image_id]:
            assert time.monotonic() < deadline, api.admin.get("/v2/cache").json()
            time.sleep(0.1)
    assert api.admin.get("/v2/cache").json()["queued_images"] == []
    assert cache.file(image_id).read_bytes() == payload


def test_the_queue_lists_images_in_order(api: Callers, cache: ImageCache) -> None:
    first, second = uploaded(api, data(20)), uploaded(api, data(21))
    cache.index.queue(first)
    time.sleep(0.01)
    cache.index.queue(second)
    assert cache.index.queued() == [first, second]


def test_queue_refuses_missing_and_inactive_images(api: Callers) -> None:
    assert api.admin.put("/v2/cache/non-existing-image-id").status_code == 404
    assert api.admin.put("/v2/cache/8a8e2e2a-0000-4000-8000-000000000000").status_code == 404
    queued = create(api.alice)["id"]
    response = api.admin.put(f"/v2/cache/{queued}")
    assert response.status_code == 400
    assert message(response) == "Only images with status active can be targeted for queueing"


def test_delete_one_entry(api: Callers, cache: ImageCache) -> None:
    image_id = uploaded(api, data(22))
    api.alice.get(f"/v2/images/{image_id}/file")
    assert api.admin.delete(f"/v2/cache/{image_id}").status_code == 204
    assert cached_ids(api) == [] and not cache.file(image_id).exists()
    assert api.admin.delete("/v2/cache/non-existing-image-id").status_code == 404


def test_an_image_deleted_while_queued_can_be_taken_out_of_the_queue(api: Callers, cache: ImageCache) -> None:
    image_id = uploaded(api, data(23))
    cache.index.queue(image_id)
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert api.admin.delete(f"/v2/cache/{image_id}").status_code == 204
    assert api.admin.get("/v2/cache").json()["queued_images"] == []
    assert api.admin.delete(f"/v2/cache/{image_id}").status_code == 404


@pytest.mark.parametrize(
    ("target", "cached_left", "queued_left"),
    [(None, 0, 0), ("", 0, 0), ("cache", 0, 1), ("queue", 1, 0), ("QUEUE", 1, 0)],
)
def test_clear(
    api: Callers, cache: ImageCache, target: str | None, cached_left: int, queued_left: int
) -> None:
    cached, queued = uploaded(api, data(24)), uploaded(api, data(25))
    api.alice.get(f"/v2/images/{cached}/file")
    cache.index.queue(queued)
    headers = {} if target is None else {"x-image-cache-clear-target": target}
    response = api.admin.delete("/v2/cache", headers=headers)
    assert response.status_code == 204
    listing = api.admin.get("/v2/cache").json()
    assert len(listing["cached_images"]) == cached_left
    assert len(listing["queued_images"]) == queued_left
    if cached_left == 0:
        assert not cache.file(cached).exists()


def test_clear_refuses_other_targets_as_glance_does(api: Callers) -> None:
    # Glance 33 takes 'cache', 'queue' or nothing (both); 'both' itself is a 400 there
    # (test_cache_api_negative_scenarios), and openstacksdk sends no header for both.
    response = api.admin.delete("/v2/cache", headers={"x-image-cache-clear-target": "both"})
    assert response.status_code == 400
    assert "must be 'cache', 'queue' or empty string" in message(response)


def test_with_the_cache_off_the_api_answers_404_after_the_policy(
    settings: Settings, db: Database, world: World
) -> None:
    with TestClient(create_app(settings, db=db, store=MemoryStore()), base_url="http://127.0.0.1:9292") as c:
        api = Callers(c, world)
        image_id = uploaded(api, data(26))
        for method, path in (("GET", "/v2/cache"), ("PUT", f"/v2/cache/{image_id}"), ("DELETE", "/v2/cache")):
            response = api.admin.request(method, path)
            assert response.status_code == 404
            assert message(response) == "Caching via API is not supported at this site."
            assert api.alice.request(method, path).status_code == 403
        versions = [v["id"] for v in api.admin.get("/v2").json()["versions"]]
        assert "v2.16" not in versions and "v2.14" not in versions


def test_versions_offer_2_14_and_2_16_with_the_cache_on(api: Callers) -> None:
    versions = [v["id"] for v in api.admin.get("/v2").json()["versions"]]
    assert versions[:3] == ["v2.16", "v2.15", "v2.14"]


def test_the_cache_directory_is_under_the_data_dir(cached_settings: Settings, cache: ImageCache) -> None:
    assert cache.root == cached_settings.data_dir / "image-cache"
    assert Path(cache.index.path).parent == cache.root


def test_removing_a_location_evicts_the_cached_copy(
    cached_settings: Settings, db: Database, world: World
) -> None:
    stores = StoreSet({"one": MemoryStore("one"), "two": MemoryStore("two")}, "one")
    with TestClient(create_app(cached_settings, db=db, stores=stores), base_url="http://127.0.0.1:9292") as c:
        api = Callers(c, world)
        payload = data(27)
        image_id = uploaded(api, payload)
        copy = {"method": {"name": "copy-image"}, "stores": ["two"]}
        # copy-image is an admin's (Glance's copy_image default).
        assert api.admin.post(f"/v2/images/{image_id}/import", json=copy).status_code == 202
        deadline = time.monotonic() + 20
        while api.alice.get(f"/v2/images/{image_id}").json().get("stores") != "one,two":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        api.alice.get(f"/v2/images/{image_id}/file")
        assert cached_ids(api) == [image_id]
        assert api.admin.delete(f"/v2/stores/one/{image_id}").status_code == 204
        assert cached_ids(api) == []
        assert api.alice.get(f"/v2/images/{image_id}/file").content == payload
