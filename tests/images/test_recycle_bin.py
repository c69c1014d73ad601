"""The recycle bin: delete into pending_delete, restore, purge
(spyglass.images.deletion, spyglass.images.recycle_bin)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from spyglass.blobs import FilesystemStore
from spyglass.blobs.registry import StoreSet
from spyglass.cli import main
from spyglass.db.engine import Database
from spyglass.images.deletion import purge_expired
from spyglass.images.recycle_bin import BIN_OFF
from spyglass.settings import Settings
from spyglass.timeutil import utcnow
from tests.api.helpers import active, create, message
from tests.api.safety import callers_with, download, event_types, share
from tests.conftest import Callers, World


@pytest.fixture
def binned(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    with callers_with(settings, db, world, recycle_retention_days=7) as api:
        yield api


def _listed(caller: object, *query: str) -> set[str]:
    url = "/v2/images?" + "&".join(query)
    return {i["id"] for i in caller.get(url).json()["images"]}  # type: ignore[attr-defined]


def test_delete_moves_the_image_into_the_bin(binned: Callers, world: World, settings: Settings) -> None:
    image_id = share(binned.alice, world.projects["beta"], binned.bob)
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204

    shown = binned.alice.get(f"/v2/images/{image_id}").json()
    assert shown["status"] == "pending_delete"
    assert binned.admin.get(f"/v2/images/{image_id}").status_code == 200
    for path in ("", "/file", "/members", f"/members/{world.projects['beta']}"):
        assert binned.bob.get(f"/v2/images/{image_id}{path}").status_code == 404
    assert image_id not in _listed(binned.alice) | _listed(binned.bob, "member_status=all")
    # The data is kept.
    assert len(list(FilesystemStore(settings.blob_dir).iter_keys())) == 1
    entry = binned.alice.get("/v2/recycle-bin").json()["images"]
    assert [(e["image_id"], e["previous_status"]) for e in entry] == [(image_id, "active")]
    assert entry[0]["deleted_by"]["user_id"] == world.users["alice"]


def test_restore_brings_back_status_members_and_their_statuses(binned: Callers, world: World) -> None:
    beta, gamma = world.projects["beta"], world.projects["gamma"]
    image_id = share(binned.alice, beta, binned.bob)
    assert binned.alice.post(f"/v2/images/{image_id}/members", json={"member": gamma}).status_code == 200
    assert binned.alice.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204

    restored = binned.alice.post(f"/v2/images/{image_id}/actions/restore")
    assert restored.status_code == 200 and restored.json()["status"] == "deactivated"
    members = binned.alice.get(f"/v2/images/{image_id}/members").json()["members"]
    assert {(m["member_id"], m["status"]) for m in members} == {(beta, "accepted"), (gamma, "pending")}
    assert binned.bob.get(f"/v2/images/{image_id}").status_code == 200
    assert binned.alice.get("/v2/recycle-bin").json()["images"] == []
    assert event_types(binned.bob, image_id)[-2:] == ["image.deleted", "image.restored"]


def test_restore_returns_an_image_without_data_to_queued(binned: Callers) -> None:
    image_id = create(binned.alice)["id"]
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert binned.alice.post(f"/v2/images/{image_id}/actions/restore").json()["status"] == "queued"


def test_who_may_restore(binned: Callers, world: World) -> None:
    image_id = share(binned.alice, world.projects["beta"], binned.bob)
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    restore = f"/v2/images/{image_id}/actions/restore"
    assert binned.bob.post(restore).status_code == 404  # the member no longer sees it
    assert binned.carol.post(restore).status_code == 404
    assert binned.rita.post(restore).status_code == 403  # a reader of the owner project
    assert binned.admin.post(restore).status_code == 200
    assert binned.alice.post(restore).status_code == 409  # not in the bin any more


def test_an_image_in_the_bin_is_restored_before_anything_else(binned: Callers, world: World) -> None:
    image_id = active(binned.alice)["id"]
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    attempts = [
        binned.alice.patch(f"/v2/images/{image_id}", ops),
        binned.alice.put(f"/v2/images/{image_id}/tags/t"),
        binned.alice.post(f"/v2/images/{image_id}/actions/deactivate"),
        binned.alice.post(f"/v2/images/{image_id}/actions/copy"),
        binned.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]}),
    ]
    assert [r.status_code for r in attempts] == [409] * len(attempts)
    assert "recycle bin" in attempts[0].json()["message"]


def test_deleting_an_image_in_the_bin_purges_it(binned: Callers, settings: Settings) -> None:
    image_id = active(binned.alice)["id"]
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert binned.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert list(FilesystemStore(settings.blob_dir).iter_keys()) == []
    assert event_types(binned.alice, image_id) == ["image.deleted", "image.purged"]


def test_the_purge_removes_expired_images_only(binned: Callers, db: Database, settings: Settings) -> None:
    store = StoreSet.single(FilesystemStore(settings.blob_dir))
    image_id = active(binned.alice)["id"]
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert purge_expired(db, store) == 0
    assert purge_expired(db, store, utcnow() + timedelta(days=8)) == 1
    assert binned.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert list(store.default.iter_keys()) == []
    purged = binned.alice.get(f"/v2/images/{image_id}/events").json()["events"][-1]
    assert purged["type"] == "image.purged" and purged["actor"]["user_id"] is None


def test_the_purge_command(binned: Callers, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    if settings.database_url:
        pytest.skip("the command reads the SQLite file of the data directory")
    image_id = active(binned.alice)["id"]
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert main(["--data-dir", str(settings.data_dir), "purge"]) == 0
    assert "purged 0 image(s)" in capsys.readouterr().out


def test_retention_zero_deletes_at_once(api: Callers, settings: Settings) -> None:
    image_id = active(api.alice)["id"]
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert api.alice.post(f"/v2/images/{image_id}/actions/restore").status_code == 404
    assert list(FilesystemStore(settings.blob_dir).iter_keys()) == []


def test_the_bin_lists_the_project_s_images_and_all_for_admin(binned: Callers, world: World) -> None:
    mine = active(binned.alice)["id"]
    theirs = active(binned.bob)["id"]
    for caller, image_id in ((binned.alice, mine), (binned.bob, theirs)):
        assert caller.delete(f"/v2/images/{image_id}").status_code == 204
    assert [e["image_id"] for e in binned.alice.get("/v2/recycle-bin").json()["images"]] == [mine]
    assert [e["image_id"] for e in binned.rita.get("/v2/recycle-bin").json()["images"]] == [mine]
    assert {e["image_id"] for e in binned.admin.get("/v2/recycle-bin").json()["images"]} == {mine, theirs}
    assert binned.anonymous.get("/v2/recycle-bin").status_code == 401


def test_a_member_keeps_downloading_after_restore(binned: Callers, world: World) -> None:
    image_id = share(binned.alice, world.projects["beta"], binned.bob)
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert binned.alice.post(f"/v2/images/{image_id}/actions/restore").status_code == 200
    assert download(binned.bob, image_id) == b"shared image bytes"


def test_an_image_in_the_bin_is_no_list_marker_for_its_former_members(binned: Callers, world: World) -> None:
    image_id = share(binned.alice, world.projects["beta"], binned.bob)
    assert binned.bob.get(f"/v2/images?marker={image_id}").status_code == 200
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    # As for an image that does not exist: the member must not learn that it waits in the bin.
    assert binned.bob.get(f"/v2/images/{image_id}").status_code == 404
    assert binned.bob.get(f"/v2/images?marker={image_id}").status_code == 400


def test_a_restore_with_the_bin_off_says_so_for_every_id(api: Callers, world: World) -> None:
    """The bin is off by default: the 404 says why nothing can come back, and says it alike for a
    deleted image, an image that never existed and another project's image."""
    deleted = active(api.alice)["id"]
    assert api.alice.delete(f"/v2/images/{deleted}").status_code == 204
    private = active(api.alice)["id"]
    never = "8d3c5a52-2f3b-4b8e-9d0c-5b1f7a9e4c21"
    answers = [api.alice.post(f"/v2/images/{deleted}/actions/restore")]
    answers += [api.bob.post(f"/v2/images/{i}/actions/restore") for i in (private, never)]
    assert [r.status_code for r in answers] == [404] * 3
    for answer, image_id in zip(answers, (deleted, private, never), strict=True):
        assert message(answer) == f"No image found with ID {image_id} {BIN_OFF}"
