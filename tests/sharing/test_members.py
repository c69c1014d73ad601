"""Sharing behaviour beyond the recording: quotas, member validation, visibility changes,
community and public images, and what project lifecycle does to shares."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import update

from spyglass.db.engine import Database
from spyglass.db.tables import projects
from tests.conftest import Caller, Callers, World, reconfigure


def _shared_image(owner: Caller, **extra: object) -> str:
    response = owner.post(
        "/v2/images", json={"name": "s", "disk_format": "raw", "container_format": "bare", **extra}
    )
    assert response.status_code == 201
    image_id: str = response.json()["id"]
    assert owner.put(f"/v2/images/{image_id}/file", content=b"x" * 100).status_code == 204
    return image_id


def _list_ids(caller: Caller, query: str = "") -> set[str]:
    response = caller.get(f"/v2/images{query}")
    assert response.status_code == 200
    return {i["id"] for i in response.json()["images"]}


def test_unknown_member_project_is_refused(api: Callers) -> None:
    image_id = _shared_image(api.alice)
    response = api.alice.post(f"/v2/images/{image_id}/members", json={"member": "no-such-project"})
    assert response.status_code == 400
    assert "does not exist" in response.json()["message"]


@pytest.mark.parametrize("body", [{}, {"member": ""}, {"member": 5}, {"member": "x" * 300}, [], "x"])
def test_bad_member_bodies(api: Callers, body: object) -> None:
    image_id = _shared_image(api.alice)
    assert api.alice.post(f"/v2/images/{image_id}/members", json=body).status_code == 400


def test_member_quota(api: Callers, world: World) -> None:
    image_id = _shared_image(api.alice)
    reconfigure(api.alice.client, image_member_quota=1)
    assert (
        api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]}).status_code
        == 200
    )
    over = api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["gamma"]})
    assert over.status_code == 413


def test_member_sees_only_its_own_row(api: Callers, world: World) -> None:
    image_id = _shared_image(api.alice)
    for project in ("beta", "gamma"):
        api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects[project]})
    rows = api.bob.get(f"/v2/images/{image_id}/members").json()["members"]
    assert [r["member_id"] for r in rows] == [world.projects["beta"]]
    assert len(api.alice.get(f"/v2/images/{image_id}/members").json()["members"]) == 2
    assert len(api.admin.get(f"/v2/images/{image_id}/members").json()["members"]) == 2
    # bob cannot look at carol's row, nor change it, nor learn it exists
    carol_row = f"/v2/images/{image_id}/members/{world.projects['gamma']}"
    assert api.bob.get(carol_row).status_code == 404
    assert api.bob.put(carol_row, json={"status": "accepted"}).status_code == 404
    assert api.bob.delete(carol_row).status_code == 404


def test_reader_cannot_accept_but_can_see(api: Callers, world: World) -> None:
    image_id = _shared_image(api.bob)
    api.bob.post(f"/v2/images/{image_id}/members", json={"member": world.projects["alpha"]})
    row = f"/v2/images/{image_id}/members/{world.projects['alpha']}"
    assert api.rita.get(f"/v2/images/{image_id}").status_code == 200
    assert api.rita.put(row, json={"status": "accepted"}).status_code == 403
    assert api.alice.put(row, json={"status": "accepted"}).status_code == 200
    assert image_id in _list_ids(api.rita)
    assert api.admin.put(row, json={"status": "rejected"}).status_code == 200


def test_private_keeps_rows_but_grants_nothing(api: Callers, world: World) -> None:
    image_id = _shared_image(api.alice)
    row = f"/v2/images/{image_id}/members/{world.projects['beta']}"
    api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]})
    api.bob.put(row, json={"status": "accepted"})
    assert image_id in _list_ids(api.bob)
    api.alice.patch(f"/v2/images/{image_id}", [{"op": "replace", "path": "/visibility", "value": "private"}])
    assert image_id not in _list_ids(api.bob, "?member_status=all")
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 404
    assert api.bob.get(f"/v2/images/{image_id}/file").status_code == 404
    assert api.alice.get(f"/v2/images/{image_id}/members").status_code == 403
    api.alice.patch(f"/v2/images/{image_id}", [{"op": "replace", "path": "/visibility", "value": "shared"}])
    assert image_id in _list_ids(api.bob)
    assert api.bob.get(row).json()["status"] == "accepted"


def test_readding_a_removed_member_starts_pending(api: Callers, world: World) -> None:
    image_id = _shared_image(api.alice)
    members = f"/v2/images/{image_id}/members"
    row = f"{members}/{world.projects['beta']}"
    api.alice.post(members, json={"member": world.projects["beta"]})
    api.bob.put(row, json={"status": "accepted"})
    assert api.alice.delete(row).status_code == 204
    assert api.alice.post(members, json={"member": world.projects["beta"]}).json()["status"] == "pending"
    assert image_id not in _list_ids(api.bob)


def test_community_and_public(api: Callers, world: World) -> None:
    community = _shared_image(api.alice, visibility="community")
    assert community not in _list_ids(api.bob)
    assert community in _list_ids(api.bob, "?visibility=community")
    assert api.bob.get(f"/v2/images/{community}").status_code == 200
    assert api.bob.get(f"/v2/images/{community}/file").status_code == 200
    assert api.alice.post(f"/v2/images/{community}/members", json={"member": "x"}).status_code == 403
    public = _shared_image(api.admin, visibility="public")
    assert public in _list_ids(api.bob) and public in _list_ids(api.carol)
    assert api.bob.delete(f"/v2/images/{public}").status_code == 403
    # Glance checks the visibility before the member (recorded Glance 33): 403 to whoever sees it.
    beta = world.projects["beta"]
    for call in (api.bob.get, api.bob.delete, api.alice.get):
        response = call(f"/v2/images/{public}/members/{beta}")
        assert response.status_code == 403
        assert "Only shared images have members." in response.text
    assert api.bob.get(f"/v2/images/{public}/members").status_code == 403
    update = api.bob.put(f"/v2/images/{public}/members/{beta}", json={"status": "accepted"})
    assert update.status_code == 403


def test_disabled_owner_project_hides_its_images(api: Callers, world: World, db: Database) -> None:
    image_id = _shared_image(api.bob)
    public = _shared_image(api.admin, visibility="public")
    row = f"/v2/images/{image_id}/members/{world.projects['alpha']}"
    api.bob.post(f"/v2/images/{image_id}/members", json={"member": world.projects["alpha"]})
    api.alice.put(row, json={"status": "accepted"})
    with db.write() as conn:
        conn.execute(update(projects).where(projects.c.id == world.projects["beta"]).values(enabled=False))
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert image_id not in _list_ids(api.alice, "?member_status=all")
    assert public in _list_ids(api.alice)
    assert api.admin.get(f"/v2/images/{image_id}").status_code == 200
    with db.write() as conn:
        conn.execute(update(projects).where(projects.c.id == world.projects["beta"]).values(enabled=True))
    assert image_id in _list_ids(api.alice)


@pytest.mark.parametrize("member", ["be\x00ta", "beta\n", "\x7f"])
def test_control_characters_in_member_ids(api: Callers, member: str) -> None:
    image_id = _shared_image(api.alice)
    response = api.alice.post(f"/v2/images/{image_id}/members", json={"member": member})
    assert response.status_code == 400, response.text
    assert "control characters are not allowed" in response.json()["message"]
    assert api.alice.get(f"/v2/images/{image_id}/members").json()["members"] == []
    assert api.alice.get(f"/v2/images/{image_id}/members/{quote(member)}").status_code == 404
