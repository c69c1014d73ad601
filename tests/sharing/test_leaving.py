"""Leaving a share: a member project ends its own membership (spyglass.sharing.leaving)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.safety import callers_with, event_types, share
from tests.conftest import Caller, Callers, World

CALLERS = ("alice", "rita", "bob", "carol", "admin", "anonymous")


def _caller(api: Callers, name: str) -> Caller:
    return getattr(api, name)  # type: ignore[no-any-return]


def _leave(caller: Caller, image_id: str, member: str) -> int:
    status: int = caller.post(f"/v2/images/{image_id}/members/{member}/actions/leave").status_code
    return status


def test_a_member_leaves_and_the_owner_sees_it(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert _leave(api.bob, image_id, beta) == 204
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 404
    assert api.alice.get(f"/v2/images/{image_id}/members").json()["members"] == []
    left = api.alice.get(f"/v2/images/{image_id}/events").json()["events"][-1]
    assert (left["type"], left["member_id"], left["before"]) == ("member.left", beta, {"status": "accepted"})
    assert left["actor"] == {"user_id": world.users["bob"], "project_id": beta}
    # The ex-member reads how its membership ended, and nothing that happens afterwards.
    ops = [{"op": "replace", "path": "/visibility", "value": "private"}]
    assert api.alice.patch(f"/v2/images/{image_id}", ops).status_code == 200
    assert event_types(api.bob, image_id) == ["member.added", "member.status_changed", "member.left"]
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 200


def test_leaving_a_pending_share_empties_the_inbox(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta)
    assert _leave(api.bob, image_id, beta) == 204
    assert api.bob.get("/v2/shared-images/invitations?status=all").json()["invitations"] == []
    # The owner may offer it again: a new membership starts.
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
    assert event_types(api.bob, image_id) == ["member.added", "member.left", "member.added"]


def test_glance_s_delete_stays_the_owner_s(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert api.bob.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 403
    assert api.bob.get(f"/v2/images/{image_id}").status_code == 200


@pytest.mark.parametrize(
    ("name", "expected"),
    # alice owns the image (403: she sees the row, removing it is her DELETE), rita reads alpha's,
    # bob is the member leaving, carol another member (beta's row is not hers to see).
    list(zip(CALLERS, (403, 403, 204, 404, 204, 401), strict=True)),
)
def test_who_may_leave(api: Callers, world: World, name: str, expected: int) -> None:
    beta, gamma = world.projects["beta"], world.projects["gamma"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": gamma}).status_code == 200
    assert _leave(_caller(api, name), image_id, beta) == expected
    members = {m["member_id"] for m in api.alice.get(f"/v2/images/{image_id}/members").json()["members"]}
    assert (beta in members) == (expected != 204) and gamma in members


def test_strangers_owners_and_readers(api: Callers, world: World) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    assert _leave(api.carol, image_id, beta) == 404  # cannot see the image
    assert _leave(api.carol, image_id, world.projects["gamma"]) == 404
    assert _leave(api.alice, image_id, alpha) == 404  # the owner is no member
    assert _leave(api.bob, image_id, "no-such-project") == 404
    assert _leave(api.bob, "00000000-0000-0000-0000-000000000000", beta) == 404
    # A reader of a member project sees the share but cannot end it.
    theirs = share(api.bob, alpha, api.alice)
    assert _leave(api.rita, theirs, alpha) == 403
    assert _leave(api.alice, theirs, alpha) == 204


@pytest.fixture
def quiet(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    with callers_with(settings, db, world, webhook_poll_seconds=0) as api:
        yield api


def test_the_owner_s_webhook_hears_of_it(quiet: Callers, world: World) -> None:
    beta = world.projects["beta"]
    hook = quiet.alice.post("/v2/webhooks", json={"url": "http://hooks.example/in"}).json()["id"]
    image_id = share(quiet.alice, beta, quiet.bob)
    assert _leave(quiet.bob, image_id, beta) == 204
    deliveries = quiet.alice.get(f"/v2/webhooks/{hook}/deliveries").json()["deliveries"]
    assert [d["event_type"] for d in deliveries] == ["member.added", "member.status_changed", "member.left"]
