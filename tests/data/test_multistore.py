"""Several stores at once (Glance's multi-store), in process: a filesystem store `fs` (the default)
and an in-memory store `mem`. Upload to either store, the `stores` property, download, removing one
store's copy, deleting the image, store discovery, and direct_url / locations when turned on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore, MemoryStore
from spyglass.blobs.registry import StoreSet
from spyglass.data.recovery import recover
from spyglass.db.engine import Database
from spyglass.db.tables import recycle_bin
from spyglass.images import queries as q
from spyglass.images.policy import use_policy_file
from spyglass.settings import Settings
from spyglass.timeutil import utcnow
from tests.api.helpers import OCTET, create
from tests.conftest import Caller, Callers, World

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


def _copied(api: Callers, image_id: str, timeout: float = 30) -> dict[str, Any]:
    """The image once no import or copy holds its lock."""
    deadline = time.monotonic() + timeout
    while True:
        image: dict[str, Any] = api.alice.get(f"/v2/images/{image_id}").json()
        busy = "os_glance_import_task" in image or image["status"] in ("importing", "saving")
        if not busy or time.monotonic() > deadline:
            return image
        time.sleep(0.02)


def _copy(caller: Caller, image_id: str, **body: Any) -> Any:
    return caller.post(f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, **body})


def test_copy_image_to_all_stores_then_remove_one(api: Callers, stores: StoreSet) -> None:
    image_id = _upload(api, "fs")
    assert _copy(api.admin, image_id, all_stores=True).status_code == 202
    image = _copied(api, image_id)
    assert image["stores"] == "fs,mem"
    assert image["os_glance_importing_to_stores"] == "" and image["os_glance_failed_import"] == ""
    keys = _keys(stores)
    assert len(keys["fs"]) == 1 and len(keys["mem"]) == 1 and keys["fs"] != keys["mem"]
    # Each copy serves the same bytes: remove the first one, then read from the other.
    assert api.admin.delete(f"/v2/stores/fs/{image_id}").status_code == 204
    assert api.alice.get(f"/v2/images/{image_id}").json()["stores"] == "mem"
    assert _keys(stores)["fs"] == []
    assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA
    assert api.admin.delete(f"/v2/stores/mem/{image_id}").status_code == 403


def test_download_falls_back_to_the_next_store(api: Callers, stores: StoreSet) -> None:
    image_id = _upload(api, "mem")
    assert _copy(api.admin, image_id, stores=["fs"]).status_code == 202
    assert _copied(api, image_id)["stores"] == "mem,fs"
    (key,) = _keys(stores)["mem"]
    stores["mem"].delete(key)  # lost behind the service's back
    assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA


def test_deleting_the_image_frees_every_store(api: Callers, stores: StoreSet) -> None:
    image_id = _upload(api, "mem")
    assert _copy(api.admin, image_id, stores=["fs"]).status_code == 202
    assert _copied(api, image_id)["stores"] == "mem,fs"
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert _keys(stores) == {"fs": [], "mem": []}


def test_copy_into_my_project_shares_every_location(api: Callers, stores: StoreSet) -> None:
    image_id = _upload(api, "fs")
    api.alice.patch(
        f"/v2/images/{image_id}", [{"op": "replace", "path": "/visibility", "value": "community"}]
    )
    assert _copy(api.admin, image_id, all_stores=True).status_code == 202
    _copied(api, image_id)
    copy = api.bob.post(f"/v2/images/{image_id}/actions/copy", json={})
    assert copy.status_code in (200, 201), copy.text
    assert copy.json()["stores"] == "fs,mem"
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert all(len(keys) == 1 for keys in _keys(stores).values())
    assert api.bob.get(f"/v2/images/{copy.json()['id']}/file").content == DATA
    assert api.bob.delete(f"/v2/images/{copy.json()['id']}").status_code == 204
    assert _keys(stores) == {"fs": [], "mem": []}


def test_copy_image_refusals(api: Callers) -> None:
    """Glance 33's copy_image default is admin-only (glance/policies/image.py: base.ADMIN): the
    image's owner gets 403 with Glance's message, after the image's status is checked."""
    image_id = _upload(api, "fs")
    assert _copy(api.bob, image_id, stores=["mem"]).status_code == 404
    assert _copy(api.rita, image_id, stores=["mem"]).status_code == 403
    refused = _copy(api.alice, image_id, stores=["mem"])
    assert refused.status_code == 403
    assert "You are not authorized to complete copy_image action." in refused.text
    queued = str(create(api.alice)["id"])
    assert _copy(api.alice, queued, stores=["mem"]).status_code == 409
    # Glance's images.py import_image: a named store that holds the image is 400.
    present = _copy(api.admin, image_id, stores=["fs"])
    assert present.status_code == 400 and "Image is already present at store 'fs'" in present.text
    assert _copy(api.admin, image_id, stores=["nowhere"]).status_code == 409
    assert _copy(api.admin, image_id, stores=["mem"], all_stores=True).status_code == 400
    assert _copy(api.admin, image_id, stores=["mem"]).status_code == 202
    assert _copied(api, image_id)["stores"] == "fs,mem"


def test_copy_to_all_stores_when_every_store_has_it_is_accepted(api: Callers, stores: StoreSet) -> None:
    """Glance skips the stores that hold the image and, with none left, answers 202 doing nothing
    (images.py import_image, "Exiting copying workflow"; Tempest's test_image_copy_image_import)."""
    image_id = _upload(api, "fs")
    assert _copy(api.admin, image_id, all_stores=True).status_code == 202
    assert _copied(api, image_id)["stores"] == "fs,mem"
    keys = _keys(stores)
    assert _copy(api.admin, image_id, all_stores=True).status_code == 202
    image = _copied(api, image_id)
    assert image["stores"] == "fs,mem" and "os_glance_import_task" not in image
    assert _keys(stores) == keys


def test_a_policy_file_lets_owners_copy_to_stores(
    settings: Settings, db: Database, world: World, stores: StoreSet, tmp_path: Path
) -> None:
    """The README's override of Glance's copy_image rule: the image's owner project copies too."""
    path = tmp_path / "policy.yaml"
    path.write_text('"copy_image": "rule:context_is_admin or (role:member and project_id:%(project_id)s)"\n')
    try:
        for api in _callers(replace(settings, policy_file=str(path)), db, world, stores):
            image_id = _upload(api, "fs")
            assert _copy(api.bob, image_id, stores=["mem"]).status_code == 404
            assert _copy(api.rita, image_id, stores=["mem"]).status_code == 403
            assert _copy(api.alice, image_id, stores=["mem"]).status_code == 202
            assert _copied(api, image_id)["stores"] == "fs,mem"
    finally:
        use_policy_file(None)


def test_import_to_several_stores(api: Callers, stores: StoreSet) -> None:
    image_id = str(create(api.alice)["id"])
    staged = api.alice.put(
        f"/v2/images/{image_id}/stage", content=DATA, headers={**OCTET, "X-Image-Meta-Store": "mem"}
    )
    assert staged.status_code == 204
    body = {"method": {"name": "glance-direct"}, "stores": ["mem", "fs"]}
    assert api.alice.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    image = _copied(api, image_id)
    assert image["status"] == "active" and image["stores"] == "mem,fs"
    assert api.alice.get(f"/v2/images/{image_id}/file").content == DATA


def test_stage_header_chooses_the_import_store(api: Callers, stores: StoreSet) -> None:
    image_id = str(create(api.alice)["id"])
    url = f"/v2/images/{image_id}/stage"
    assert api.alice.put(url, content=DATA, headers={**OCTET, "X-Image-Meta-Store": "x"}).status_code == 400
    assert api.alice.put(url, content=DATA, headers={**OCTET, "X-Image-Meta-Store": "mem"}).status_code == 204
    body = {"method": {"name": "glance-direct"}}
    assert api.alice.post(f"/v2/images/{image_id}/import", json=body).status_code == 202
    assert _copied(api, image_id)["stores"] == "mem"


def test_locations_of_a_copied_image(shown_api: Callers, stores: StoreSet) -> None:
    image_id = _upload(shown_api, "fs")
    assert _copy(shown_api.admin, image_id, all_stores=True).status_code == 202
    image = _copied(shown_api, image_id)
    (mem_key,) = _keys(stores)["mem"]
    assert [loc["metadata"]["store"] for loc in image["locations"]] == ["fs", "mem"]
    assert image["locations"][1]["url"] == f"mem://{mem_key}"
    assert image["direct_url"] == image["locations"][0]["url"]


def test_recovery_sweeps_every_store_and_ends_cut_off_copies(
    api: Callers, stores: StoreSet, db: Database
) -> None:
    image_id = _upload(api, "fs")
    assert _copy(api.admin, image_id, stores=["mem"]).status_code == 202
    _copied(api, image_id)
    for name, store in stores.items():
        writer = store.writer(f"orphan-{name}")
        writer.write(b"left by a crash")
        writer.commit()
    with db.write() as conn:
        record = q.fetch_image(conn, image_id, None)
        assert record is not None
        cut_off = {**record.properties, "os_glance_import_task": "t", "os_glance_importing_to_stores": "mem"}
        q.replace_properties(conn, image_id, record.properties, cut_off)
    result = recover(db, list(stores.values()))
    assert result.orphans_removed == 2
    assert all(len(keys) == 1 for keys in _keys(stores).values())
    image = api.alice.get(f"/v2/images/{image_id}").json()
    assert "os_glance_import_task" not in image
    assert image["os_glance_failed_import"] == "mem" and image["stores"] == "fs,mem"


def test_the_scheduled_purge_empties_every_store(
    settings: Settings, db: Database, world: World, stores: StoreSet
) -> None:
    """The server's own purge (its lifespan), not only `spyglass purge`, reaches non-default stores."""
    binned = replace(settings, recycle_retention_days=1)
    with TestClient(create_app(binned, db=db, stores=stores), base_url="http://127.0.0.1:9292") as client:
        api = Callers(client, world)
        image_id = _upload(api, "mem")
        assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    with db.write() as conn:
        conn.execute(update(recycle_bin).values(purge_after=utcnow() - timedelta(seconds=1)))
    # A new server starts its purge schedule at once.
    with TestClient(create_app(binned, db=db, stores=stores), base_url="http://127.0.0.1:9292") as client:
        deadline = time.monotonic() + 10
        while _keys(stores)["mem"] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _keys(stores) == {"fs": [], "mem": []}
    with db.read() as conn:
        assert q.fetch_image(conn, image_id, None) is None


def test_copy_image_is_an_import_task_of_the_image(api: Callers) -> None:
    """Glance records copy-image as an api_image_import task whose input names the stores. (An
    admin's import, by Glance's copy_image default; the task is the admin project's.)"""
    image_id = _upload(api, "fs")
    body = {"stores": ["mem"], "all_stores_must_succeed": False}
    assert _copy(api.admin, image_id, **body).status_code == 202
    deadline = time.monotonic() + 30
    while True:
        [task] = api.admin.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if task["status"] in ("success", "failure") or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert (task["type"], task["status"]) == ("api_image_import", "success")
    assert task["result"] == {"image_id": image_id}
    assert task["input"] == {
        "image_id": image_id,
        "import_req": {"method": {"name": "copy-image"}, **body},
        "backend": ["mem"],
    }
