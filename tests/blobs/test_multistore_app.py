"""Several stores at once against the real Swift of conftest.py: the API over a filesystem store
`fs`, a Swift store `swift1` and an S3 store `s3` (Swift's s3api). Upload to each store, copy-image
to all, the same bytes in every store, removing one store's copy, deleting the image, and the
location URLs in Glance's formats."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.blobs.registry import StoreSet
from spyglass.blobs.s3 import S3Store
from spyglass.blobs.swift import SwiftStore
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import OCTET, create
from tests.conftest import Callers, World

# Larger than the tiny Swift segments and S3 parts the factories use: several of each.
DATA = os.urandom(700 * 1024)
NAMES = ("fs", "swift1", "s3")


@pytest.fixture
def stores(
    settings: Settings,
    make_swift_store: Callable[..., SwiftStore],
    make_s3_store: Callable[..., S3Store],
) -> StoreSet:
    members = {
        "fs": FilesystemStore(settings.blob_dir),
        "swift1": make_swift_store(name="swift1"),
        "s3": make_s3_store(name="s3"),
    }
    return StoreSet(members, "fs")


@pytest.fixture
def api(settings: Settings, db: Database, world: World, stores: StoreSet) -> Iterator[Callers]:
    shown = replace(settings, show_image_direct_url=True, show_multiple_locations=True)
    with TestClient(create_app(shown, db=db, stores=stores), base_url="http://127.0.0.1:9292") as client:
        yield Callers(client, world)


def _keys(stores: StoreSet) -> dict[str, list[str]]:
    return {name: sorted(store.iter_keys()) for name, store in stores.items()}


def _settled(api: Callers, image_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        image: dict[str, Any] = api.alice.get(f"/v2/images/{image_id}").json()
        if "os_glance_import_task" not in image or time.monotonic() > deadline:
            return image
        time.sleep(0.05)


@pytest.mark.parametrize("store", NAMES)
def test_upload_copy_to_all_and_read_every_copy(api: Callers, stores: StoreSet, store: str) -> None:
    image_id = str(create(api.alice)["id"])
    headers = {**OCTET, "X-Image-Meta-Store": store}
    assert api.alice.put(f"/v2/images/{image_id}/file", content=DATA, headers=headers).status_code == 204
    assert api.alice.get(f"/v2/images/{image_id}").json()["stores"] == store
    copy = {"method": {"name": "copy-image"}, "all_stores": True}
    assert api.admin.post(f"/v2/images/{image_id}/import", json=copy).status_code == 202
    image = _settled(api, image_id)
    assert image["os_glance_failed_import"] == ""
    assert sorted(image["stores"].split(",")) == sorted(NAMES)
    keys = _keys(stores)
    for name in NAMES:
        (key,) = keys[name]
        assert b"".join(stores[name].read(key)) == DATA, name
    # Download from each store in turn: remove the others' copies one by one.
    for name in [n for n in NAMES if n != store]:
        assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA
        assert api.admin.delete(f"/v2/stores/{name}/{image_id}").status_code == 204
        assert _keys(stores)[name] == []
    assert api.alice.get(f"/v2/images/{image_id}").json()["stores"] == store
    assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA
    assert api.admin.delete(f"/v2/stores/{store}/{image_id}").status_code == 403


def test_deleting_the_image_frees_every_store(api: Callers, stores: StoreSet) -> None:
    image_id = str(create(api.alice)["id"])
    assert api.alice.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET).status_code == 204
    copy = {"method": {"name": "copy-image"}, "stores": ["swift1", "s3"]}
    assert api.admin.post(f"/v2/images/{image_id}/import", json=copy).status_code == 202
    image = _settled(api, image_id)
    assert image["stores"] == "fs,swift1,s3"
    assert all(len(keys) == 1 for keys in _keys(stores).values())
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert _keys(stores) == {"fs": [], "swift1": [], "s3": []}


def test_location_urls(api: Callers, stores: StoreSet, settings: Settings) -> None:
    image_id = str(create(api.alice)["id"])
    assert api.alice.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET).status_code == 204
    copy = {"method": {"name": "copy-image"}, "all_stores": True}
    assert api.admin.post(f"/v2/images/{image_id}/import", json=copy).status_code == 202
    image = _settled(api, image_id)
    keys = {name: key for name, (key,) in _keys(stores).items()}
    swift = stores["swift1"]
    s3 = stores["s3"]
    assert isinstance(swift, SwiftStore) and isinstance(s3, S3Store)
    expected = {
        "fs": (settings.blob_dir / keys["fs"]).resolve().as_uri(),
        "swift1": f"swift+config://swift1/{swift.config.container}/{keys['swift1']}",
        "s3": f"s3://{s3.config.bucket}/{keys['s3']}",
    }
    assert {loc["metadata"]["store"]: loc["url"] for loc in image["locations"]} == expected
    assert image["direct_url"] == expected["fs"]
    text = str(image)
    assert swift.config.key not in text and str(s3.config.secret_key) not in text
    # The locations API reads these URLs back (spyglass.data.location_import).
    assert {name: stores.locate(url) for name, url in expected.items()} == {
        n: (n, k) for n, k in keys.items()
    }
    assert stores.locate(f"swift+config://swift1/other-container/{keys['swift1']}") is None
    assert stores.locate(f"s3://other-bucket/{keys['s3']}") is None


def test_info_stores_detail_hides_credentials(api: Callers, stores: StoreSet) -> None:
    detail = api.admin.get("/v2/info/stores/detail").json()["stores"]
    assert [entry["id"] for entry in detail] == list(NAMES)
    assert api.alice.get("/v2/info/stores").json()["stores"][0] == {"id": "fs", "default": "true"}
