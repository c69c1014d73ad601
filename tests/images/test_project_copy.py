"""Copy into my project, shared blobs and deduplication
(spyglass.images.project_copy, spyglass.images.blob_refs)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import insert, select

from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.tables import blobs, image_properties
from spyglass.settings import Settings
from tests.api.helpers import active, create, md5, upload
from tests.api.safety import callers_with, download, event_types, share
from tests.conftest import Callers, World

DATA = b"shared image bytes"


def _keys(settings: Settings) -> list[str]:
    return sorted(FilesystemStore(settings.blob_dir).iter_keys())


def _store_bytes(settings: Settings) -> int:
    return sum(p.stat().st_size for p in Path(settings.blob_dir).iterdir())


def test_a_member_copies_an_image_into_its_project(api: Callers, world: World, settings: Settings) -> None:
    beta, alpha = world.projects["beta"], world.projects["alpha"]
    image_id = share(api.alice, beta, api.bob, name="web", min_disk=3, tags=["a", "b"], distro="debian")

    response = api.bob.post(f"/v2/images/{image_id}/actions/copy", json={"name": "my web"})
    assert response.status_code == 201, response.text
    copy = response.json()
    assert response.headers["location"].endswith(f"/v2/images/{copy['id']}")
    assert (copy["owner"], copy["visibility"], copy["status"]) == (beta, "private", "active")
    assert copy["name"] == "my web" and copy["min_disk"] == 3 and sorted(copy["tags"]) == ["a", "b"]
    assert copy["distro"] == "debian" and copy["checksum"] == md5(DATA)
    assert copy["spyglass_copied_from_image"] == image_id
    assert copy["spyglass_copied_from_owner"] == alpha
    assert copy["spyglass_copied_at"].endswith("Z")
    assert download(api.bob, copy["id"]) == DATA
    assert len(_keys(settings)) == 1  # no byte was copied
    assert copy["id"] in {i["id"] for i in api.bob.get("/v2/images").json()["images"]}


def test_the_copy_survives_source_deletion_revocation_and_project_deletion(
    api: Callers, world: World, settings: Settings
) -> None:
    beta, alpha = world.projects["beta"], world.projects["alpha"]
    image_id = share(api.alice, beta, api.bob)
    copy_id = api.bob.post(f"/v2/images/{image_id}/actions/copy").json()["id"]
    assert api.alice.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 204
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert api.admin.delete(f"/identity/v3/projects/{alpha}").status_code == 204
    assert download(api.bob, copy_id) == DATA
    assert len(_keys(settings)) == 1
    assert api.bob.delete(f"/v2/images/{copy_id}").status_code == 204
    assert _keys(settings) == []


def test_who_may_copy(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"])  # bob pending: a member in any status sees it
    public = active(api.admin, visibility="public")["id"]
    expected = {
        (api.bob, image_id): 201,
        (api.alice, image_id): 201,  # the owner duplicates its own image
        (api.admin, image_id): 201,
        (api.rita, image_id): 403,  # a reader makes no images
        (api.carol, image_id): 404,  # a stranger does not see it
        (api.carol, public): 201,
        (api.anonymous, image_id): 401,
    }
    for (caller, source), status in expected.items():
        assert caller.post(f"/v2/images/{source}/actions/copy").status_code == status


def test_only_active_images_are_copied(api: Callers) -> None:
    queued = create(api.alice)["id"]
    assert api.alice.post(f"/v2/images/{queued}/actions/copy").status_code == 409
    deactivated = active(api.alice)["id"]
    assert api.alice.post(f"/v2/images/{deactivated}/actions/deactivate").status_code == 204
    assert api.alice.post(f"/v2/images/{deactivated}/actions/copy").status_code == 409


def test_bad_copy_bodies(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    url = f"/v2/images/{image_id}/actions/copy"
    for body in (b"[1]", b'{"name": 3}', b'{"owner": "x"}', b"{", b'{"name": "a\\u0000b"}'):
        assert api.alice.post(url, content=body).status_code == 400, body
    assert api.alice.post(url, json={"name": None}).json()["name"] is None


def test_copies_record_provenance_events_and_drop_spyglass_properties(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob, spyglass_protect_consumers="true")
    copy = api.bob.post(f"/v2/images/{image_id}/actions/copy").json()
    assert "spyglass_protect_consumers" not in copy
    source_events = api.alice.get(f"/v2/images/{image_id}/events").json()["events"]
    assert source_events[-1]["type"] == "image.copied" and source_events[-1]["member_id"] == beta
    assert source_events[-1]["after"]["copy_image"] == copy["id"]
    assert event_types(api.bob, image_id)[-1] == "image.copied"
    assert event_types(api.bob, copy["id"]) == ["image.created_by_copy"]


def test_identical_uploads_of_a_project_share_one_blob(
    api: Callers, settings: Settings, db: Database
) -> None:
    first = active(api.alice, DATA)["id"]
    second = active(api.alice, DATA)["id"]
    other = active(api.alice, b"other bytes")["id"]
    assert len(_keys(settings)) == 2
    assert download(api.alice, second) == DATA
    with db.read() as conn:
        counts = {r.size: r.refcount for r in conn.execute(select(blobs))}
    assert counts == {len(DATA): 2, len(b"other bytes"): 1}
    for image_id in (first, other):
        assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert download(api.alice, second) == DATA
    assert len(_keys(settings)) == 1
    assert api.alice.delete(f"/v2/images/{second}").status_code == 204
    assert _keys(settings) == []


def test_another_project_s_identical_upload_learns_nothing_of_the_first(
    settings: Settings, db: Database, world: World
) -> None:
    with callers_with(settings, db, world, show_image_direct_url=True) as api:
        private = active(api.alice, DATA, visibility="private")
        mine = active(api.bob, DATA)
        again = active(api.bob, DATA)
    # Blob keys are random: no image's id, and Bob's bytes are his own blob, not Alice's.
    assert private["id"] not in mine["direct_url"] and mine["id"] not in mine["direct_url"]
    assert mine["direct_url"] != private["direct_url"]
    assert again["direct_url"] == mine["direct_url"]
    assert len(_keys(settings)) == 2


def test_ten_copies_of_100_mib_use_100_mib(api: Callers, world: World, settings: Settings) -> None:
    data = os.urandom(100 * 1024 * 1024)
    source = create(api.alice)["id"]
    upload(api.alice, source, data)
    members = (world.projects["beta"], world.projects["gamma"])
    for member in members:
        api.alice.post(f"/v2/images/{source}/members", json={"member": member})
    copies = [
        (caller, caller.post(f"/v2/images/{source}/actions/copy").json()["id"])
        for caller in (api.bob, api.carol, api.alice, api.admin, api.bob) * 2
    ]
    assert len(copies) == 10
    assert _store_bytes(settings) == len(data)
    assert api.alice.delete(f"/v2/images/{source}").status_code == 204
    for caller, copy_id in copies[:-1]:
        assert caller.delete(f"/v2/images/{copy_id}").status_code == 204
    assert _store_bytes(settings) == len(data)
    last_caller, last = copies[-1]
    assert last_caller.delete(f"/v2/images/{last}").status_code == 204
    assert _keys(settings) == [] and _store_bytes(settings) == 0


def test_a_copy_does_not_inherit_the_source_s_import_bookkeeping(
    api: Callers, world: World, db: Database
) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    with db.write() as conn:
        conn.execute(
            insert(image_properties),
            [
                {"image_id": image_id, "name": "os_glance_import_task", "value": "some-task"},
                {"image_id": image_id, "name": "os_glance_failed_import", "value": "s3"},
            ],
        )
    copied = api.bob.post(f"/v2/images/{image_id}/actions/copy")
    assert copied.status_code == 201, copied.text
    assert not [k for k in copied.json() if k.startswith("os_glance")]
