"""Shares in bulk: POST /v2/shared-images/bulk applies each pair's single-call rules."""

from __future__ import annotations

from typing import Any

import pytest

from spyglass.sharing.bulk import MAX_PAIRS
from tests.api.helpers import active
from tests.api.safety import OVERRIDE, download, event_types, protect
from tests.conftest import Caller, Callers, World, reconfigure

BULK = "/v2/shared-images/bulk"
CALLERS = ("alice", "rita", "bob", "carol", "admin", "anonymous")


def _shared(owner: Caller) -> str:
    image_id: str = active(owner, b"bulk", visibility="shared")["id"]
    return image_id


def _members(caller: Caller, image_id: str) -> set[str]:
    return {m["member_id"] for m in caller.get(f"/v2/images/{image_id}/members").json()["members"]}


def _bulk(caller: Caller, **body: Any) -> Any:
    return caller.post(BULK, json=body)


def test_add_then_remove_many_pairs(api: Callers, world: World) -> None:
    images = [_shared(api.alice) for _ in range(3)]
    projects = [world.projects["beta"], world.projects["gamma"]]
    added = _bulk(api.alice, action="add", images=images, members=projects)
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["applied"] is True and len(body["results"]) == 6
    assert {(r["status"], r["error"]) for r in body["results"]} == {(200, None)}
    for image_id in images:
        assert _members(api.alice, image_id) == set(projects)
        assert event_types(api.alice, image_id) == ["member.added", "member.added"]
    removed = _bulk(api.alice, action="remove", images=images, members=projects)
    assert {r["status"] for r in removed.json()["results"]} == {204}
    assert all(_members(api.alice, i) == set() for i in images)


def test_each_pair_gets_its_single_call_answer(api: Callers, world: World) -> None:
    mine, bobs = _shared(api.alice), _shared(api.bob)
    private = active(api.bob, b"p")["id"]
    beta = world.projects["beta"]
    api.alice.post(f"/v2/images/{mine}/members", json={"member": beta})
    body = _bulk(
        api.alice,
        action="add",
        images=[mine, bobs, private, "not-an-id"],
        members=[beta, "no-such-project"],
    ).json()
    got = {(r["image_id"], r["member_id"]): r["status"] for r in body["results"]}
    assert got == {
        (mine, beta): 409,  # already a member
        (mine, "no-such-project"): 400,
        (bobs, beta): 404,  # a shared image of bob that alice is not a member of
        (bobs, "no-such-project"): 404,
        (private, beta): 404,
        (private, "no-such-project"): 404,
        ("not-an-id", beta): 404,
        ("not-an-id", "no-such-project"): 404,
    }
    # An invisible image answers exactly as the single call does: no leak.
    single = api.alice.post(f"/v2/images/{private}/members", json={"member": beta})
    pair = next(r for r in body["results"] if r["image_id"] == private)
    assert (pair["status"], pair["error"]) == (single.status_code, single.json()["message"].split("<br")[0])


def test_invisible_images_are_404_like_the_single_call(api: Callers, world: World) -> None:
    bobs_private = active(api.bob, b"p")["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    body = _bulk(api.alice, action="remove", images=[bobs_private, missing], members=[world.projects["beta"]])
    results = body.json()["results"]
    assert [r["status"] for r in results] == [404, 404]
    for r in results:
        single = api.alice.delete(f"/v2/images/{r['image_id']}/members/{world.projects['beta']}")
        assert single.status_code == 404
        assert r["error"] == f"No image found with ID {r['image_id']}"


def test_atomic_failure_changes_nothing(api: Callers, world: World) -> None:
    image_id = _shared(api.alice)
    body = {"images": [image_id], "members": [world.projects["beta"], "no-such-project"], "atomic": True}
    response = _bulk(api.alice, action="add", **body)
    assert response.status_code == 409
    document = response.json()
    assert document["applied"] is False
    assert [r["status"] for r in document["results"]] == ["not_applied", 400]
    assert _members(api.alice, image_id) == set()
    assert event_types(api.alice, image_id) == []
    non_atomic = _bulk(api.alice, action="add", **{**body, "atomic": False})
    assert non_atomic.status_code == 200
    assert [r["status"] for r in non_atomic.json()["results"]] == [200, 400]
    assert _members(api.alice, image_id) == {world.projects["beta"]}


def test_quota_counts_pairs_already_added_in_the_call(api: Callers, world: World) -> None:
    image_id = _shared(api.alice)
    reconfigure(api.alice.client, image_member_quota=1)
    projects = [world.projects["beta"], world.projects["gamma"]]
    results = _bulk(api.alice, action="add", images=[image_id], members=projects).json()["results"]
    assert [r["status"] for r in results] == [200, 413]


def test_impact_safeguards_and_their_override(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = _shared(api.alice)
    api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta})
    api.bob.put(f"/v2/images/{image_id}/members/{beta}", json={"status": "accepted"})
    download(api.bob, image_id)
    protect(api.alice, image_id)
    body = {"action": "remove", "images": [image_id], "members": [beta]}
    refused = api.alice.post(BULK, json=body).json()["results"][0]
    assert refused["status"] == 409 and beta in refused["error"]
    done = api.alice.post(BULK, json=body, headers=OVERRIDE).json()["results"][0]
    assert done["status"] == 204
    assert event_types(api.alice, image_id)[-1] == "member.removed"


def test_expiry_on_bulk_add(api: Callers, world: World) -> None:
    image_id = _shared(api.alice)
    when = "2099-01-31T00:00:00Z"
    body = {"action": "add", "images": [image_id], "members": [world.projects["beta"]], "expires_at": when}
    assert api.alice.post(BULK, json=body).status_code == 200
    row = api.alice.get(f"/v2/images/{image_id}/members/{world.projects['beta']}").json()
    assert row["expires_at"] == when


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"action": "share", "images": ["x"], "members": ["y"]},
        {"action": "add", "images": [], "members": ["y"]},
        {"action": "add", "images": "x", "members": ["y"]},
        {"action": "add", "images": ["x"], "members": [5]},
        {"action": "add", "images": ["x"], "members": ["y"], "atomic": "yes"},
        {"action": "add", "images": ["x"], "members": ["y"], "extra": 1},
        {"action": "add", "images": ["x"], "members": ["y"], "expires_at": "2000-01-01T00:00:00Z"},
        {"action": "remove", "images": ["x"], "members": ["y"], "expires_at": "2099-01-01T00:00:00Z"},
    ],
)
def test_bad_bodies(api: Callers, body: object) -> None:
    assert api.alice.post(BULK, json=body).status_code == 400


def test_too_many_pairs(api: Callers) -> None:
    images = [f"i{n}" for n in range(101)]
    members = [f"m{n}" for n in range(MAX_PAIRS // 100)]
    assert _bulk(api.alice, action="add", images=images, members=members).status_code == 413


def test_authorization_matrix(api: Callers, world: World) -> None:
    """owner, its reader, a member, a stranger, an admin, no token: each pair as the single call."""
    image_id = _shared(api.alice)
    gamma = world.projects["gamma"]
    api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]})
    api.bob.put(f"/v2/images/{image_id}/members/{world.projects['beta']}", json={"status": "accepted"})
    got = []
    for name in CALLERS:
        response = getattr(api, name).post(
            BULK, json={"action": "add", "images": [image_id], "members": [gamma]}
        )
        got.append(
            response.json()["results"][0]["status"] if response.status_code == 200 else response.status_code
        )
        if got[-1] == 200:
            api.alice.delete(f"/v2/images/{image_id}/members/{gamma}")
    # alice adds; rita (reader) may not write at all; bob sees the image but does not own it;
    # carol does not see it; admin adds; no token is 401.
    assert got == [200, 403, 403, 404, 200, 401]


def _state(caller: Caller, image_id: str) -> tuple[list[tuple[str, str]], list[Any]]:
    rows = caller.get(f"/v2/images/{image_id}/members").json()["members"]
    events = caller.get(f"/v2/images/{image_id}/events").json()["events"]
    return (
        sorted((m["member_id"], m["status"]) for m in rows),
        [(e["type"], e["member_id"], e["before"], e["after"]) for e in events],
    )


def test_a_mixed_call_ends_as_the_same_single_calls_in_order(api: Callers, world: World) -> None:
    """Judged together or one by one, the answers and what they leave behind are the same: a
    domain share and a row it made (single calls inside the call), a trusted owner, a duplicate,
    a project that does not exist, control characters, and the quota reached half-way."""
    other = api.admin.get("/identity/v3/domains?name=other").json()["domains"][0]["id"]
    created = api.admin.post(
        "/identity/v3/projects", json={"project": {"name": "delta", "domain_id": "default"}}
    )
    delta = created.json()["project"]["id"]
    beta, gamma = world.projects["beta"], world.projects["gamma"]
    trusted = api.carol.post("/v2/shared-images/auto-accept", json={"owner": world.projects["alpha"]})
    assert trusted.status_code == 201, trusted.text
    members = [f"domain:{other}", gamma, beta, "no-such-project", "a\tb", delta]
    reconfigure(api.alice.client, image_member_quota=3)
    together, one_by_one = _shared(api.alice), _shared(api.alice)
    for image_id in (together, one_by_one):
        assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
    body = _bulk(api.alice, action="add", images=[together], members=members).json()
    # (The twin images' ids differ in the messages that name the image.)
    answers = [
        (r["status"], r["error"] and r["error"].replace(together, one_by_one)) for r in body["results"]
    ]
    singles = []
    for member in members:
        response = api.alice.post(f"/v2/images/{one_by_one}/members", json={"member": member})
        message = None if response.status_code == 200 else response.json()["message"].split("<br")[0]
        singles.append((response.status_code, message))
    assert answers == singles
    assert [status for status, _ in answers] == [200, 200, 409, 400, 400, 413]
    (rows, events), (single_rows, single_events) = _state(api.alice, together), _state(api.alice, one_by_one)
    assert rows == single_rows and (gamma, "accepted") in rows
    assert [e[:2] + e[3:] for e in events] == [e[:2] + e[3:] for e in single_events]
    # Removing again: the domain entry through its single call, the others judged together.
    gone = [beta, f"domain:{other}", gamma, "gone"]
    removed = _bulk(api.alice, action="remove", images=[together], members=gone)
    for member in gone:
        api.alice.delete(f"/v2/images/{one_by_one}/members/{member}")
    assert [r["status"] for r in removed.json()["results"]] == [204, 204, 204, 404]
    assert _state(api.alice, together)[0] == _state(api.alice, one_by_one)[0] == []
