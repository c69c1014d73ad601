"""Deprecation with a successor: who may deprecate, what it validates, what Glance clients see,
obsolete images' downloads (410 for other projects) and what members and consumers are told.

Written from the rules: the owner project with the member role, or an admin, deprecates and
undeprecates; a project that sees the image is refused (403), one that does not gets 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from spyglass.images import deprecation
from spyglass.timeutil import isotime, utcnow
from tests.api.helpers import active, message
from tests.api.safety import download, event_types, share
from tests.conftest import Caller, Callers, World

CALLERS = ("alice", "rita", "bob", "carol", "admin", "anonymous")


def _caller(api: Callers, name: str) -> Caller:
    return getattr(api, name)  # type: ignore[no-any-return]


def later(days: float) -> str:
    return str(isotime(utcnow() + timedelta(days=days)))


def deprecate(caller: Caller, image_id: str, **body: Any) -> Any:
    return caller.post(f"/v2/images/{image_id}/actions/deprecate", json=body)


def travel(monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    """The download check's clock moves `days` ahead."""
    moment = utcnow() + timedelta(days=days)
    monkeypatch.setattr(deprecation, "utcnow", lambda: moment)


# ---- the authorization matrix --------------------------------------------------------------------


def test_who_may_deprecate(api: Callers, world: World) -> None:
    """alice owns it, rita reads alpha, bob is the accepted member, carol a stranger."""
    got = []
    for name in CALLERS:
        image_id = share(api.alice, world.projects["beta"], api.bob)
        got.append(deprecate(_caller(api, name), image_id).status_code)
    assert tuple(got) == (200, 403, 403, 404, 200, 401)


def test_who_may_undeprecate(api: Callers, world: World) -> None:
    got = []
    for name in CALLERS:
        image_id = share(api.alice, world.projects["beta"], api.bob)
        assert deprecate(api.alice, image_id).status_code == 200
        got.append(_caller(api, name).post(f"/v2/images/{image_id}/actions/undeprecate").status_code)
    assert tuple(got) == (200, 403, 403, 404, 200, 401)


def test_another_member_is_refused_like_the_member(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    added = api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["gamma"]})
    assert added.status_code == 200
    assert deprecate(api.carol, image_id).status_code == 403
    assert api.carol.post(f"/v2/images/{image_id}/actions/undeprecate").status_code == 403


def test_obsolete_downloads_by_caller(api: Callers, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """From obsolete_at on: the owner project and admins download, the member gets 410, a stranger 404
    (the owner's reader gets 403 throughout: downloading needs the member role, as on Glance)."""
    image_id = share(api.alice, world.projects["beta"], api.bob)
    successor = share(api.alice, world.projects["beta"], api.bob)
    assert deprecate(api.alice, image_id, replacement=successor, obsolete_at=later(1)).status_code == 200
    before = tuple(_caller(api, n).get(f"/v2/images/{image_id}/file").status_code for n in CALLERS)
    assert before == (200, 403, 200, 404, 200, 401)
    travel(monkeypatch, 2)
    after = tuple(_caller(api, n).get(f"/v2/images/{image_id}/file").status_code for n in CALLERS)
    assert after == (200, 403, 410, 404, 200, 401)
    refused = api.bob.get(f"/v2/images/{image_id}/file")
    assert successor in message(refused) and "obsolete" in message(refused)


def test_untargeted_endpoints(api: Callers) -> None:
    notices = tuple(_caller(api, n).get("/v2/shared-images/notices").status_code for n in CALLERS)
    assert notices == (200, 200, 200, 200, 200, 401)
    latest = tuple(_caller(api, n).get("/v2/families/none/latest").status_code for n in CALLERS)
    assert latest == (404, 404, 404, 404, 404, 401)


# ---- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"obsolete_at": "2001-01-01T00:00:00Z"}, "future"),
        ({"delete_at": "yesterday"}, "UTC time"),
        ({"obsolete_at": later(3), "delete_at": later(2)}, "later than delete_at"),
        ({"replacement": "not-an-id"}, "image id"),
        ({"replacement": "00000000-0000-4000-8000-000000000000"}, "can see"),
        ({"colour": "red"}, "JSON object"),
    ],
)
def test_invalid_terms(api: Callers, body: dict[str, Any], words: str) -> None:
    image_id = active(api.alice)["id"]
    refused = deprecate(api.alice, image_id, **body)
    assert refused.status_code == 400, refused.text
    assert words in message(refused)


def test_the_replacement_must_be_another_active_visible_non_deprecated_image(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    assert deprecate(api.alice, image_id, replacement=image_id).status_code == 400
    queued = api.alice.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    assert "not active" in message(deprecate(api.alice, image_id, replacement=queued["id"]))
    hidden = active(api.bob)["id"]  # private to beta: alpha cannot see it
    assert "can see" in message(deprecate(api.alice, image_id, replacement=hidden))
    old = active(api.alice)["id"]
    assert deprecate(api.alice, old).status_code == 200
    assert "itself deprecated" in message(deprecate(api.alice, image_id, replacement=old))


def test_only_active_or_deactivated_images_and_no_deletion_of_protected_ones(api: Callers) -> None:
    queued = api.alice.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    assert deprecate(api.alice, queued["id"]).status_code == 409
    protected = active(api.alice, protected=True)["id"]
    assert deprecate(api.alice, protected, delete_at=later(5)).status_code == 409
    assert deprecate(api.alice, protected).status_code == 200


# ---- what clients see -----------------------------------------------------------------------------


def test_properties_glance_clients_display_and_undeprecate_restores(api: Callers) -> None:
    successor = active(api.alice)["id"]
    image = active(api.alice, provided_until="2031-12-31", uuid_validity="forever")
    obsolete_at = datetime(2099, 3, 1, 12, 0)
    delete_at = datetime(2099, 4, 1, 0, 0)
    shown = deprecate(
        api.alice,
        image["id"],
        replacement=successor,
        obsolete_at=isotime(obsolete_at),
        delete_at=isotime(delete_at),
    ).json()
    assert shown["spyglass_deprecated"] == "true"
    assert shown["spyglass_replaced_by"] == successor
    assert shown["spyglass_obsolete_at"] == "2099-03-01T12:00:00Z"
    assert shown["spyglass_delete_at"] == "2099-04-01T00:00:00Z"
    # SCS scs-0102: provided (and referencable) until at least the last full day before.
    assert shown["provided_until"] == "2099-02-28"
    assert shown["uuid_validity"] == "2099-03-31"
    restored = api.alice.post(f"/v2/images/{image['id']}/actions/undeprecate").json()
    assert not [k for k in restored if k.startswith("spyglass_")]
    assert (restored["provided_until"], restored["uuid_validity"]) == ("2031-12-31", "forever")


def test_the_deprecation_properties_are_reserved(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    for name in deprecation.SPYGLASS_PROPERTIES:
        ops = [{"op": "add", "path": f"/{name}", "value": "x"}]
        assert api.alice.patch(f"/v2/images/{image_id}", ops).status_code == 403
    assert api.alice.post("/v2/images", json={"spyglass_deprecated": "true"}).status_code == 403


def test_a_plain_glance_image_shows_nothing_new(api: Callers) -> None:
    image = active(api.alice)
    assert not [k for k in image if k.startswith("spyglass_") or k in deprecation.SCS_PROPERTIES]


def test_undeprecating_what_is_not_deprecated_is_a_conflict(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    assert api.alice.post(f"/v2/images/{image_id}/actions/undeprecate").status_code == 409


def test_the_owner_may_still_download_after_obsolete(api: Callers, monkeypatch: pytest.MonkeyPatch) -> None:
    image_id = active(api.alice, b"old data", visibility="community")["id"]
    assert deprecate(api.alice, image_id, obsolete_at=later(1)).status_code == 200
    travel(monkeypatch, 2)
    assert download(api.alice, image_id) == b"old data"
    refused = api.bob.get(f"/v2/images/{image_id}/file")
    assert refused.status_code == 410
    assert "replacement" not in message(refused)


# ---- telling members and consumers -------------------------------------------------------------------


def test_members_and_consumers_are_told_once(api: Callers, world: World) -> None:
    image_id = active(api.alice, visibility="community")["id"]
    api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]})
    download(api.carol, image_id)  # a consumer that is no member
    terms = {"obsolete_at": later(30)}
    assert deprecate(api.alice, image_id, **terms).status_code == 200
    assert deprecate(api.alice, image_id, **terms).status_code == 200  # the same terms again
    assert event_types(api.alice, image_id).count("image.deprecated") == 2  # image-wide + carol's
    mine = api.carol.get(f"/v2/images/{image_id}/events").json()["events"]
    assert [e["member_id"] for e in mine if e["type"] == "image.deprecated"] == [world.projects["gamma"]]


def test_notices_list_what_concerns_the_caller(api: Callers, world: World) -> None:
    shared = share(api.alice, world.projects["beta"])  # offered, not accepted yet
    community = active(api.alice, visibility="community")["id"]
    download(api.carol, community)
    successor = active(api.alice, visibility="community")["id"]
    assert deprecate(api.alice, shared, replacement=successor, obsolete_at=later(10)).status_code == 200
    assert deprecate(api.alice, community, delete_at=later(20)).status_code == 200
    bobs = api.bob.get("/v2/shared-images/notices").json()["notices"]
    assert [(n["image_id"], n["state"], n["reason"], n["replacement"]) for n in bobs] == [
        (shared, "deprecated", "member", successor)
    ]
    carols = api.carol.get("/v2/shared-images/notices").json()["notices"]
    assert [(n["image_id"], n["reason"]) for n in carols] == [(community, "consumer")]
    assert api.alice.get("/v2/shared-images/notices").json()["notices"] == []
