"""The consumer inbox: shares offered to the caller's project (spyglass.sharing.invitations)."""

from __future__ import annotations

from tests.api.helpers import create
from tests.api.safety import share
from tests.conftest import Caller, Callers, World

URL = "/v2/shared-images/invitations"


def _ids(caller: Caller, query: str = "") -> list[str]:
    response = caller.get(URL + query)
    assert response.status_code == 200, response.text
    return [i["image_id"] for i in response.json()["invitations"]]


def test_pending_shares_across_images_and_owners(api: Callers, world: World) -> None:
    alpha = world.projects["alpha"]
    from_bob = share(api.bob, alpha, name="from bob")
    from_carol = share(api.carol, alpha)
    accepted = share(api.bob, alpha, api.alice)

    assert set(_ids(api.alice)) == {from_bob, from_carol}
    assert set(_ids(api.rita)) == {from_bob, from_carol}  # readers of the project see them too
    assert _ids(api.alice, "?status=accepted") == [accepted]
    assert set(_ids(api.alice, "?status=all")) == {from_bob, from_carol, accepted}
    entry = next(i for i in api.alice.get(URL).json()["invitations"] if i["image_id"] == from_bob)
    assert (entry["image_name"], entry["owner"], entry["status"]) == (
        "from bob",
        world.projects["beta"],
        "pending",
    )
    assert entry["member_id"] == alpha


def test_accepting_or_rejecting_empties_the_inbox(api: Callers, world: World) -> None:
    alpha = world.projects["alpha"]
    image_id = share(api.bob, alpha)
    assert (
        api.alice.put(f"/v2/images/{image_id}/members/{alpha}", json={"status": "rejected"}).status_code
        == 200
    )
    assert _ids(api.alice) == []
    assert _ids(api.alice, "?status=rejected") == [image_id]


def test_shares_that_grant_nothing_are_not_offered(api: Callers, world: World) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    made_private = share(api.bob, alpha)
    ops = [{"op": "replace", "path": "/visibility", "value": "private"}]
    assert api.bob.patch(f"/v2/images/{made_private}", ops).status_code == 200
    suspended = share(api.bob, alpha)
    assert (
        api.admin.patch_json(f"/identity/v3/projects/{beta}", {"project": {"enabled": False}}).status_code
        == 200
    )
    assert suspended not in _ids(api.alice) and made_private not in _ids(api.alice)
    assert _ids(api.alice) == []


def test_the_inbox_is_the_caller_s_own(api: Callers, world: World) -> None:
    share(api.bob, world.projects["alpha"])
    create(api.alice)
    assert _ids(api.carol) == [] and _ids(api.admin) == [] and _ids(api.bob) == []
    assert api.anonymous.get(URL).status_code == 401
    assert api.alice.get(URL + "?status=maybe").status_code == 400
