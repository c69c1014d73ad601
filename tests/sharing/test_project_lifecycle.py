"""What deleting or disabling a project in the identity service does to sharing."""

from __future__ import annotations

from tests.conftest import Caller, Callers, World


def _shared_with(owner: Caller, member_project: str, accept_as: Caller, **extra: object) -> str:
    image_id: str = owner.post("/v2/images", json={"name": "lc", **extra}).json()["id"]
    assert owner.put(f"/v2/images/{image_id}/file", content=b"lifecycle").status_code == 204
    assert owner.post(f"/v2/images/{image_id}/members", json={"member": member_project}).status_code == 200
    assert (
        accept_as.put(
            f"/v2/images/{image_id}/members/{member_project}", json={"status": "accepted"}
        ).status_code
        == 200
    )
    return image_id


def test_deleting_the_owner_project_ends_its_shares_and_keeps_its_data(api: Callers, world: World) -> None:
    shared = _shared_with(api.bob, world.projects["alpha"], api.alice)
    community = api.bob.post("/v2/images", json={"name": "c", "visibility": "community"}).json()["id"]
    assert api.alice.get(f"/v2/images/{shared}").status_code == 200

    assert api.admin.delete(f"/identity/v3/projects/{world.projects['beta']}").status_code == 204

    for image_id in (shared, community):
        assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
        admin_view = api.admin.get(f"/v2/images/{image_id}")
        assert admin_view.status_code == 200 and admin_view.json()["visibility"] == "private"
    assert api.admin.get(f"/v2/images/{shared}/file").content == b"lifecycle"
    assert shared not in {
        i["id"] for i in api.alice.get("/v2/images?member_status=all&visibility=all").json()["images"]
    }


def test_deleting_a_member_project_removes_its_memberships(api: Callers, world: World) -> None:
    image_id = _shared_with(api.alice, world.projects["beta"], api.bob)
    assert api.admin.delete(f"/identity/v3/projects/{world.projects['beta']}").status_code == 204
    assert api.alice.get(f"/v2/images/{image_id}/members").json()["members"] == []


def test_disabling_the_owner_project_suspends_its_shares_until_enabled(api: Callers, world: World) -> None:
    image_id = _shared_with(api.bob, world.projects["alpha"], api.alice)
    beta = f"/identity/v3/projects/{world.projects['beta']}"
    assert api.admin.patch_json(beta, {"project": {"enabled": False}}).status_code == 200
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert api.alice.get(f"/v2/images/{image_id}/file").status_code == 404
    assert api.admin.patch_json(beta, {"project": {"enabled": True}}).status_code == 200
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 200
    assert image_id in {i["id"] for i in api.alice.get("/v2/images").json()["images"]}
