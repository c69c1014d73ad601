"""Several stores at once (Glance's multi-store), in process: a filesystem store `fs` (the default)
and an in-memory store `mem`. Upload to either store, the `stores` property, download, removing one
store's copy, deleting the image, store discovery, and direct_url / locations when turned on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore, MemoryStore
from spyglass.blobs.registry import StoreSet
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import OCTET, create
from tests.conftest import Callers, World

DATA = b"multi-store image data" * 1000


@pytest.fixture
def stores(settings: Settings) -> StoreSet:
    return StoreSet({"fs": FilesystemStore(settings.blob_dir), "mem": MemoryStore("mem")}, "fs")


def _callers(settings: Settings, db: Database, world: World, stores: StoreSet) -> Iterator[Callers]:
    with TestClient(create_app(settings, db=db, stores=stores), base_url="http://127.0.0.1:9292") as client:
        yield Callers(client, world)


@pytest.fixture
def api(settings: Settings, db: Database, world: World, stores: StoreSet) -> Iterator[Callers]:
    yield from _callers(settings, db, world, stores)


@pytest.fixture
def shown_api(settings: Settings, db: Database, world: World, stores: StoreSet) -> Iterator[Callers]:
    shown = replace(settings, show_image_direct_url=True, show_multiple_locations=True)
    yield from _callers(shown, db, world, stores)


def _upload(api: Callers, store: str | None, data: bytes = DATA) -> str:
    image_id = str(create(api.alice)["id"])
    headers = {**OCTET, **({"X-Image-Meta-Store": store} if store else {})}
    response = api.alice.put(f"/v2/images/{image_id}/file", content=data, headers=headers)
    assert response.status_code == 204, response.text
    return image_id


def _keys(stores: StoreSet) -> dict[str, list[str]]:
    return {name: sorted(store.iter_keys()) for name, store in stores.items()}


@pytest.mark.parametrize("store", ["fs", "mem", None])
def test_upload_to_the_chosen_store(api: Callers, stores: StoreSet, store: str | None) -> None:
    image_id = _upload(api, store)
    image = api.alice.get(f"/v2/images/{image_id}").json()
    assert image["stores"] == (store or "fs")
    assert "direct_url" not in image and "locations" not in image
    assert len(_keys(stores)[store or "fs"]) == 1
    assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA


def test_unknown_store_is_400_and_reads_no_data(api: Callers, stores: StoreSet) -> None:
    image_id = str(create(api.alice)["id"])
    headers = {**OCTET, "X-Image-Meta-Store": "nowhere"}
    response = api.alice.put(f"/v2/images/{image_id}/file", content=DATA, headers=headers)
    assert response.status_code == 400
    assert "nowhere" in response.json()["message"]
    assert api.alice.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert _keys(stores) == {"fs": [], "mem": []}


def test_info_stores(api: Callers) -> None:
    response = api.rita.get("/v2/info/stores")
    assert response.status_code == 200
    assert response.json() == {"stores": [{"id": "fs", "default": "true"}, {"id": "mem"}]}
    assert api.anonymous.get("/v2/info/stores").status_code == 401


def test_info_stores_detail_is_for_admins(api: Callers) -> None:
    assert api.alice.get("/v2/info/stores/detail").status_code == 403
    assert api.anonymous.get("/v2/info/stores/detail").status_code == 401
    stores = api.admin.get("/v2/info/stores/detail").json()["stores"]
    assert [s["id"] for s in stores] == ["fs", "mem"]
    assert stores[0]["default"] == "true"
    assert {"type", "properties"} <= set(stores[1])


def test_store_ids_header_on_create(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={})
    assert response.headers["OpenStack-image-store-ids"] == "fs,mem"


def test_locations_shown_when_configured(shown_api: Callers, stores: StoreSet, settings: Settings) -> None:
    image_id = _upload(shown_api, "fs")
    image = shown_api.alice.get(f"/v2/images/{image_id}").json()
    (key,) = _keys(stores)["fs"]
    url = (settings.blob_dir / key).resolve().as_uri()
    assert image["direct_url"] == url
    assert image["locations"] == [{"url": url, "metadata": {"store": "fs"}}]
    listed = shown_api.alice.get("/v2/images").json()["images"]
    assert listed[0]["locations"] == image["locations"]


def test_delete_from_store_refused_for_the_last_copy(api: Callers) -> None:
    image_id = _upload(api, "mem")
    assert api.alice.delete(f"/v2/stores/mem/{image_id}").status_code == 403
    assert api.admin.delete(f"/v2/stores/mem/{image_id}").status_code == 403
    assert api.admin.delete(f"/v2/stores/fs/{image_id}").status_code == 404
    assert api.admin.delete(f"/v2/stores/nowhere/{image_id}").status_code == 404
    assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA
