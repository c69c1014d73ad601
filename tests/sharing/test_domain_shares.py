"""Sharing an image with a whole domain (`domain:<id>`): every project of it, present and future,
gets its own member row; the owner sees and removes the one domain entry."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.api.helpers import create, message
from tests.api.safety import event_types
from tests.conftest import PASSWORD, Caller, Callers, World, reconfigure

V3 = "/identity/v3"


def domain_id(api: Callers, name: str) -> str:
    found: str = api.admin.get(f"{V3}/domains?name={name}").json()["domains"][0]["id"]
    return found


def new_project(api: Callers, name: str, domain: str) -> str:
    response = api.admin.post(f"{V3}/projects", json={"project": {"name": name, "domain_id": domain}})
    assert response.status_code == 201, response.text
    project: str = response.json()["project"]["id"]
    return project


def as_member_of(api: Callers, client: TestClient, world: World, user: str, project: str) -> Caller:
    """`user` with the member role on `project`, and a token scoped to it."""
    roles = {r["name"]: r["id"] for r in api.admin.get(f"{V3}/roles").json()["roles"]}
    grant = f"{V3}/projects/{project}/users/{world.users[user]}/roles/{roles['member']}"
    assert api.admin.put(grant).status_code == 204
    user_domain = api.admin.get(f"{V3}/users/{world.users[user]}").json()["user"]["domain_id"]
    identity = {"user": {"name": user, "domain": {"id": user_domain}, "password": PASSWORD}}
    auth = {
        "identity": {"methods": ["password"], "password": identity},
        "scope": {"project": {"id": project}},
    }
    response = client.post(f"{V3}/auth/tokens", json={"auth": auth})
    assert response.status_code == 201, response.text
    return Caller(client, response.headers["X-Subject-Token"])


def shared_with(owner: Caller, *members: str) -> str:
    image_id: str = create(owner, name="dom")["id"]
    for member in members:
        added = owner.post(f"/v2/images/{image_id}/members", json={"member": member})
        assert added.status_code == 200, added.text
    return image_id


def member_rows(caller: Caller, image_id: str) -> dict[str, str]:
    response = caller.get(f"/v2/images/{image_id}/members")
    assert response.status_code == 200, response.text
    return {m["member_id"]: m["status"] for m in response.json()["members"]}


def inbox(caller: Caller, status: str = "pending") -> list[dict[str, Any]]:
    response = caller.get(f"/v2/shared-images/invitations?status={status}")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["invitations"]
    return rows


def test_every_project_of_the_domain_is_offered_the_image(api: Callers, world: World) -> None:
    other = domain_id(api, "other")
    gamma = world.projects["gamma"]
    added = api.alice.post(
        f"/v2/images/{(image_id := create(api.alice)['id'])}/members", json={"member": f"domain:{other}"}
    )
    assert added.status_code == 200
    assert (added.json()["member_id"], added.json()["status"]) == (f"domain:{other}", "pending")

    assert member_rows(api.alice, image_id) == {f"domain:{other}": "pending", gamma: "pending"}
    assert [(r["image_id"], r["member_id"]) for r in inbox(api.carol)] == [(image_id, gamma)]
    assert api.carol.get(f"/v2/images/{image_id}").status_code == 200
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 404 and inbox(api.bob) == []

    accepted = api.carol.put(f"/v2/images/{image_id}/members/{gamma}", json={"status": "accepted"})
    assert accepted.status_code == 200
    assert image_id in {i["id"] for i in api.carol.get("/v2/images").json()["images"]}
    assert member_rows(api.alice, image_id)[f"domain:{other}"] == "pending"
    assert member_rows(api.carol, image_id) == {gamma: "accepted"}


def test_the_domain_must_exist_and_be_enabled(api: Callers) -> None:
    image_id = create(api.alice)["id"]
    missing = api.alice.post(f"/v2/images/{image_id}/members", json={"member": "domain:nope"})
    assert missing.status_code == 400 and "does not exist" in message(missing)
    off = api.admin.post(f"{V3}/domains", json={"domain": {"name": "off", "enabled": False}}).json()
    disabled = api.alice.post(
        f"/v2/images/{image_id}/members", json={"member": f"domain:{off['domain']['id']}"}
    )
    assert disabled.status_code == 400 and "is disabled" in message(disabled)
    assert member_rows(api.alice, image_id) == {}


def test_a_domain_entry_is_added_once(api: Callers) -> None:
    image_id = shared_with(api.alice, f"domain:{domain_id(api, 'other')}")
    again = api.alice.post(
        f"/v2/images/{image_id}/members", json={"member": f"domain:{domain_id(api, 'other')}"}
    )
    assert again.status_code == 409


def test_a_project_created_later_is_offered_the_image(api: Callers, world: World, client: TestClient) -> None:
    other = domain_id(api, "other")
    image_id = shared_with(api.alice, f"domain:{other}")
    later = new_project(api, "later", other)
    assert member_rows(api.alice, image_id)[later] == "pending"
    carol_later = as_member_of(api, client, world, "carol", later)
    assert [r["image_id"] for r in inbox(carol_later)] == [image_id]
    assert carol_later.get(f"/v2/images/{image_id}").status_code == 200
    assert (
        carol_later.put(f"/v2/images/{image_id}/members/{later}", json={"status": "accepted"}).status_code
        == 200
    )
    # A project created in another domain is offered nothing.
    elsewhere = new_project(api, "elsewhere", "default")
    assert elsewhere not in member_rows(api.alice, image_id)


def test_removing_the_domain_entry_ends_its_rows_but_not_a_direct_share(api: Callers, world: World) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    image_id = shared_with(api.carol, beta)
    assert (
        api.bob.put(f"/v2/images/{image_id}/members/{beta}", json={"status": "accepted"}).status_code == 200
    )
    api.carol.post(f"/v2/images/{image_id}/members", json={"member": "domain:default"})
    rows = member_rows(api.carol, image_id)
    assert (rows["domain:default"], rows[alpha], rows[beta]) == ("pending", "pending", "accepted")
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 200

    assert api.carol.delete(f"/v2/images/{image_id}/members/domain:default").status_code == 204
    assert member_rows(api.carol, image_id) == {beta: "accepted"}
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 200
    assert inbox(api.alice, "all") == []


def test_adding_a_domain_project_directly_makes_its_row_direct(api: Callers, world: World) -> None:
    alpha = world.projects["alpha"]
    image_id = shared_with(api.carol, "domain:default")
    assert (
        api.alice.put(f"/v2/images/{image_id}/members/{alpha}", json={"status": "rejected"}).status_code
        == 200
    )
    direct = api.carol.post(f"/v2/images/{image_id}/members", json={"member": alpha})
    assert (direct.status_code, direct.json()["status"]) == (200, "rejected")
    assert api.carol.post(f"/v2/images/{image_id}/members", json={"member": alpha}).status_code == 409
    assert api.carol.delete(f"/v2/images/{image_id}/members/domain:default").status_code == 204
    assert member_rows(api.carol, image_id) == {alpha: "rejected"}


def test_removing_one_project_of_the_domain_leaves_the_others(api: Callers, world: World) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    image_id = shared_with(api.carol, "domain:default")
    assert api.carol.delete(f"/v2/images/{image_id}/members/{alpha}").status_code == 204
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 200
    assert alpha not in member_rows(api.carol, image_id) and beta in member_rows(api.carol, image_id)


def test_the_quota_counts_the_domain_entry_once(api: Callers, world: World) -> None:
    reconfigure(api.alice.client, image_member_quota=2)
    image_id = shared_with(api.alice, "domain:default")  # beta and admin, beside alpha the owner
    assert set(member_rows(api.alice, image_id)) == {
        "domain:default",
        world.projects["beta"],
        world.projects["admin"],
    }
    shared_with_other = api.alice.post(
        f"/v2/images/{image_id}/members", json={"member": f"domain:{domain_id(api, 'other')}"}
    )
    assert shared_with_other.status_code == 200
    # Making gamma's row direct would be a third entry.
    assert (
        api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["gamma"]}).status_code
        == 413
    )


def test_no_one_sets_the_status_of_the_domain_entry(api: Callers) -> None:
    image_id = shared_with(api.alice, "domain:default")
    entry = f"/v2/images/{image_id}/members/domain:default"
    assert api.alice.put(entry, json={"status": "accepted"}).status_code == 403
    refused = api.admin.put(entry, json={"status": "accepted"})
    assert refused.status_code == 400 and "each project of the domain" in message(refused)


def test_events_of_a_domain_share(api: Callers, world: World) -> None:
    other, gamma = domain_id(api, "other"), world.projects["gamma"]
    image_id = shared_with(api.alice, f"domain:{other}")
    api.carol.put(f"/v2/images/{image_id}/members/{gamma}", json={"status": "accepted"})
    api.alice.delete(f"/v2/images/{image_id}/members/domain:{other}")
    owner_view = api.alice.get(f"/v2/images/{image_id}/events").json()["events"]
    assert [(e["type"], e["member_id"]) for e in owner_view] == [
        ("member.added", f"domain:{other}"),
        ("member.added", gamma),
        ("member.status_changed", gamma),
        ("member.removed", f"domain:{other}"),
        ("member.removed", gamma),
    ]
    assert owner_view[1]["after"] == {"status": "pending", "via": f"domain:{other}"}
    # The member reads its own membership's events, even once its access has ended.
    assert event_types(api.carol, image_id) == ["member.added", "member.status_changed", "member.removed"]


def test_deleting_a_project_of_the_domain_removes_its_row(api: Callers, world: World) -> None:
    image_id = shared_with(api.carol, "domain:default")
    assert api.admin.delete(f"{V3}/projects/{world.projects['beta']}").status_code == 204
    assert set(member_rows(api.carol, image_id)) == {
        "domain:default",
        world.projects["alpha"],
        world.projects["admin"],
    }
