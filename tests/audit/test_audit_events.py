"""The audit trail: which operations record which events, and who reads them
(spyglass.audit.events, spyglass.images.history)."""

from __future__ import annotations

from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import active, create
from tests.api.safety import callers_with, event_types, share
from tests.conftest import Callers, World


def test_every_sharing_and_lifecycle_operation_is_recorded(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    assert api.alice.post(f"/v2/images/{image_id}/actions/reactivate").status_code == 204
    # (Members are removed while the image is shared: a private image has none to remove, as Glance.)
    assert api.alice.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 204
    ops = [{"op": "replace", "path": "/visibility", "value": "private"}]
    assert api.alice.patch(f"/v2/images/{image_id}", ops).status_code == 200
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204

    assert event_types(api.alice, image_id) == [
        "member.added",
        "member.status_changed",
        "image.deactivated",
        "image.reactivated",
        "member.removed",
        "image.visibility_changed",
        "image.deleted",
    ]


def test_an_event_names_actor_member_time_and_before_after(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    added, accepted = api.alice.get(f"/v2/images/{image_id}/events").json()["events"]
    assert added["member_id"] == beta and added["image_id"] == image_id
    assert added["owner"] == world.projects["alpha"]
    assert added["actor"] == {"user_id": world.users["alice"], "project_id": world.projects["alpha"]}
    assert added["before"] is None and added["after"] == {"status": "pending"}
    assert accepted["actor"] == {"user_id": world.users["bob"], "project_id": beta}
    assert (accepted["before"], accepted["after"]) == ({"status": "pending"}, {"status": "accepted"})
    assert accepted["created_at"].endswith("Z") and accepted["id"] > added["id"]


def test_setting_the_same_member_status_again_records_nothing(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    again = api.bob.put(f"/v2/images/{image_id}/members/{beta}", json={"status": "accepted"})
    assert again.status_code == 200
    assert event_types(api.alice, image_id) == ["member.added", "member.status_changed"]


def test_a_member_reads_its_own_membership_only(api: Callers, world: World) -> None:
    beta, gamma = world.projects["beta"], world.projects["gamma"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": gamma}).status_code == 200
    assert api.alice.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204

    seen = api.bob.get(f"/v2/images/{image_id}/events").json()["events"]
    assert [(e["type"], e["member_id"]) for e in seen] == [
        ("member.added", beta),
        ("member.status_changed", beta),
        ("image.deactivated", None),
    ]
    assert [e["member_id"] for e in api.carol.get(f"/v2/images/{image_id}/events").json()["events"]] == [
        gamma,
        None,
    ]


def test_a_revoked_member_still_reads_when_it_lost_access(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 204
    # Image-wide events after the revocation are none of its business.
    assert api.alice.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204

    assert api.bob.get(f"/v2/images/{image_id}").status_code == 404
    seen = api.bob.get(f"/v2/images/{image_id}/events").json()["events"]
    assert [e["type"] for e in seen] == ["member.added", "member.status_changed", "member.removed"]
    removed = seen[-1]
    assert removed["before"] == {"status": "accepted"}
    assert removed["actor"]["project_id"] == world.projects["alpha"]


def test_a_member_learns_the_image_was_deleted(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert event_types(api.bob, image_id)[-1] == "image.deleted"


def test_the_owner_and_admin_read_the_trail_of_a_deleted_image(api: Callers, world: World) -> None:
    image_id = active(api.alice)["id"]
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    assert event_types(api.alice, image_id) == ["image.deleted"]
    assert event_types(api.rita, image_id) == ["image.deleted"]
    assert event_types(api.admin, image_id) == ["image.deleted"]
    assert api.bob.get(f"/v2/images/{image_id}/events").status_code == 404


def test_who_reads_the_events(api: Callers, world: World) -> None:
    shared = share(api.alice, world.projects["beta"])
    public = create(api.admin, visibility="public")["id"]
    expected = {
        (api.alice, shared): 200,
        (api.rita, shared): 200,  # a reader of the owner project
        (api.admin, shared): 200,
        (api.bob, shared): 200,  # the member (pending)
        (api.carol, shared): 404,  # a stranger
        (api.carol, public): 200,  # sees the image, reads nothing
        (api.anonymous, shared): 401,
    }
    for (caller, image_id), status in expected.items():
        assert caller.get(f"/v2/images/{image_id}/events").status_code == status
    assert api.carol.get(f"/v2/images/{public}/events").json()["events"] == []
    for bad in ("not-a-uuid", "00000000-0000-4000-8000-000000000000"):
        assert api.alice.get(f"/v2/images/{bad}/events").status_code == 404


def test_events_page_with_limit_and_marker(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    first = api.alice.get(f"/v2/images/{image_id}/events?limit=1").json()
    assert [e["type"] for e in first["events"]] == ["member.added"]
    rest = api.alice.get(first["next"]).json()
    assert [e["type"] for e in rest["events"]] == ["member.status_changed"]
    for bad in ("limit=0", "limit=1001", "limit=x", "marker=-1", f"marker={2**63}"):
        assert api.alice.get(f"/v2/images/{image_id}/events?{bad}").status_code == 400


def test_the_marker_takes_every_id_an_event_can_have(api: Callers, world: World) -> None:
    # Event ids are 64-bit: the largest (19 digits) is a marker after which nothing follows.
    image_id = share(api.alice, world.projects["beta"], api.bob)
    response = api.alice.get(f"/v2/images/{image_id}/events?marker={2**63 - 1}")
    assert response.status_code == 200, response.text
    assert response.json()["events"] == []


def test_project_deletion_is_recorded_for_owner_and_members(api: Callers, world: World) -> None:
    beta, alpha = world.projects["beta"], world.projects["alpha"]
    owned_by_beta = share(api.bob, alpha, api.alice)
    shared_with_beta = share(api.alice, beta, api.bob)

    assert api.admin.delete(f"/identity/v3/projects/{beta}").status_code == 204

    seen = api.alice.get(f"/v2/images/{owned_by_beta}/events").json()["events"]
    assert [(e["type"], e["member_id"]) for e in seen][-2:] == [
        ("project.deleted", None),
        ("member.removed", alpha),
    ]
    assert seen[-1]["after"] == {"reason": "owner project deleted"}
    assert seen[-1]["actor"] == {"user_id": None, "project_id": None}
    last = api.alice.get(f"/v2/images/{shared_with_beta}/events").json()["events"][-1]
    assert (last["type"], last["member_id"], last["after"]) == (
        "member.removed",
        beta,
        {"reason": "member project deleted"},
    )


def test_glance_answers_are_unchanged_with_the_trail(settings: Settings, db: Database, world: World) -> None:
    with callers_with(settings, db, world) as api:
        image = active(api.alice)
        assert "events" not in image and set(image) == set(api.alice.get(f"/v2/images/{image['id']}").json())


def test_event_and_usage_params_that_are_not_ascii_digits(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    for query in ("marker=%C2%B2", "limit=%C2%B2", "marker=99999999999999999999999999"):
        response = api.alice.get(f"/v2/images/{image_id}/events?{query}")
        assert response.status_code == 400, (query, response.status_code)
