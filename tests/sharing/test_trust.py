"""Trusted owners: a consumer project's rules that let shares from an owner start accepted
(spyglass.sharing.trust, /v2/shared-images/auto-accept)."""

from __future__ import annotations

from typing import Any

import pytest

from spyglass.identity.bootstrap import DEFAULT_DOMAIN_ID
from spyglass.sharing import trust
from tests.api.helpers import active, message
from tests.api.safety import event_types
from tests.conftest import Caller, Callers, World

URL = "/v2/shared-images/auto-accept"
CALLERS = ("alice", "rita", "bob", "carol", "admin", "anonymous")


def _caller(api: Callers, name: str) -> Caller:
    return getattr(api, name)  # type: ignore[no-any-return]


def _trust(caller: Caller, **body: str) -> dict[str, Any]:
    response = caller.post(URL, json=body)
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def _other_domain(api: Callers) -> str:
    found = api.admin.get("/identity/v3/domains?name=other").json()["domains"]
    domain_id: str = found[0]["id"]
    return domain_id


def _offer(owner: Caller, member_project: str) -> tuple[str, dict[str, Any]]:
    """Share a new active image with a project; the image id and the owner's 200 answer."""
    image_id: str = active(owner, b"trusted bytes", visibility="shared")["id"]
    added = owner.post(f"/v2/images/{image_id}/members", json={"member": member_project})
    assert added.status_code == 200, added.text
    return image_id, added.json()


def _inbox(caller: Caller, status: str = "pending") -> list[str]:
    rows = caller.get(f"/v2/shared-images/invitations?status={status}").json()["invitations"]
    return [r["image_id"] for r in rows]


def test_a_trusted_owner_s_share_starts_accepted(api: Callers, world: World) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    rule = _trust(api.alice, owner=beta)
    assert set(rule) == {"id", "owner", "created_at"} and rule["owner"] == beta

    image_id, member = _offer(api.bob, alpha)
    assert member["status"] == "accepted"
    listed = api.alice.get("/v2/images").json()["images"]
    assert image_id in [i["id"] for i in listed]  # in the default list: no accept step
    assert _inbox(api.alice) == [] and _inbox(api.alice, "accepted") == [image_id]
    added = api.bob.get(f"/v2/images/{image_id}/events").json()["events"][0]
    assert added["type"] == "member.added"
    assert added["after"] == {"status": "accepted", "reason": "trusted owner"}
    # The consumer keeps its say: it can still reject the share.
    row = f"/v2/images/{image_id}/members/{alpha}"
    assert api.alice.put(row, json={"status": "rejected"}).json()["status"] == "rejected"


def test_an_untrusted_owner_s_share_stays_pending(api: Callers, world: World) -> None:
    alpha, beta, gamma = world.projects["alpha"], world.projects["beta"], world.projects["gamma"]
    _trust(api.alice, owner=beta)
    _trust(api.bob, owner=world.projects["gamma"])  # beta's rule is nothing to alpha
    image_id, member = _offer(api.carol, alpha)
    assert member["status"] == "pending"
    assert _inbox(api.alice) == [image_id]
    assert event_types(api.carol, image_id) == ["member.added"]
    added = api.carol.get(f"/v2/images/{image_id}/events").json()["events"][0]
    assert added["after"] == {"status": "pending"}
    # Trust is one-way: alpha trusting beta is not beta trusting alpha, beta trusting gamma is not
    # gamma trusting beta.
    _, to_bob = _offer(api.alice, beta)
    assert to_bob["status"] == "pending"
    _, to_carol = _offer(api.bob, gamma)
    assert to_carol["status"] == "pending"


def test_a_domain_rule_trusts_every_project_of_the_domain(api: Callers, world: World) -> None:
    alpha = world.projects["alpha"]
    rule = _trust(api.alice, owner_domain=_other_domain(api))
    assert set(rule) == {"id", "owner_domain", "created_at"}
    assert _offer(api.carol, alpha)[1]["status"] == "accepted"  # gamma is in domain "other"
    assert _offer(api.bob, alpha)[1]["status"] == "pending"  # beta is in Default


def test_deleting_a_rule_ends_it_for_new_shares_only(api: Callers, world: World) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    rule = _trust(api.alice, owner=beta)
    before, _ = _offer(api.bob, alpha)
    assert api.alice.get(URL).json()["rules"] == [rule]
    assert api.alice.delete(f"{URL}/{rule['id']}").status_code == 204
    assert api.alice.get(URL).json()["rules"] == []
    assert _offer(api.bob, alpha)[1]["status"] == "pending"
    assert api.alice.get(f"/v2/images/{before}/members/{alpha}").json()["status"] == "accepted"
    assert api.alice.delete(f"{URL}/{rule['id']}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "x",
        {"owner": ""},
        {"owner": 5},
        {"owner": None},
        {"owner": "x" * 65},
        {"owner": "a\x00b"},
        {"owner": "a", "owner_domain": "b"},
        {"project": "a"},
    ],
    ids=str,
)
def test_bad_bodies(api: Callers, body: object) -> None:
    assert api.alice.post(URL, json=body).status_code == 400


def test_ids_must_name_what_exists(api: Callers, world: World) -> None:
    unknown = api.alice.post(URL, json={"owner": "no-such-project"})
    assert unknown.status_code == 400
    expected = "Project no-such-project does not exist; only an existing project can be trusted."
    assert message(unknown) == expected
    no_domain = api.alice.post(URL, json={"owner_domain": "no-such-domain"})
    assert no_domain.status_code == 400 and "does not exist" in message(no_domain)
    # A project id is not a domain id, nor the other way round.
    assert api.alice.post(URL, json={"owner_domain": world.projects["beta"]}).status_code == 400
    assert api.alice.post(URL, json={"owner": DEFAULT_DOMAIN_ID}).status_code == 400
    itself = api.alice.post(URL, json={"owner": world.projects["alpha"]})
    assert itself.status_code == 400 and "caller's project" in message(itself)
    assert api.alice.get(URL).json()["rules"] == []


def test_duplicates_and_the_cap(api: Callers, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    beta = world.projects["beta"]
    _trust(api.alice, owner=beta)
    duplicate = api.alice.post(URL, json={"owner": beta})
    assert duplicate.status_code == 409 and "already trusts" in message(duplicate)
    monkeypatch.setattr(trust, "RULES_PER_PROJECT", 2)
    _trust(api.alice, owner_domain=DEFAULT_DOMAIN_ID)
    over = api.alice.post(URL, json={"owner": world.projects["gamma"]})
    assert over.status_code == 413
    assert len(api.alice.get(URL).json()["rules"]) == 2
    assert api.bob.post(URL, json={"owner": world.projects["gamma"]}).status_code == 201  # per project


def test_other_projects_never_see_or_delete_my_rules(api: Callers, world: World) -> None:
    rule = _trust(api.alice, owner=world.projects["beta"])
    assert api.rita.get(URL).json()["rules"] == [rule]  # the same project, read-only
    for name in ("bob", "carol", "admin"):
        caller = _caller(api, name)
        assert caller.get(URL).json()["rules"] == []
        assert caller.delete(f"{URL}/{rule['id']}").status_code == 404
    assert api.alice.delete(f"{URL}/not-a-rule-id").status_code == 404
    assert api.alice.get(URL).json()["rules"] == [rule]


def test_authorization(api: Callers, world: World) -> None:
    got = tuple(_caller(api, n).get(URL).status_code for n in CALLERS)
    assert got == (200, 200, 200, 200, 200, 401)
    body = {"owner_domain": DEFAULT_DOMAIN_ID}
    got = tuple(_caller(api, n).post(URL, json=body).status_code for n in CALLERS)
    assert got == (201, 403, 201, 201, 201, 401)
    rule = _caller(api, "alice").get(URL).json()["rules"][0]["id"]
    got = tuple(_caller(api, n).delete(f"{URL}/{rule}").status_code for n in reversed(CALLERS))
    # anonymous, admin, carol, bob, rita (reader of the rule's project), alice
    assert got == (401, 404, 404, 404, 403, 204)


def test_deleting_a_project_takes_its_rules_and_the_rules_trusting_it(api: Callers, world: World) -> None:
    gamma = world.projects["gamma"]
    _trust(api.alice, owner=gamma)
    kept = _trust(api.alice, owner=world.projects["beta"])
    _trust(api.carol, owner=world.projects["alpha"])
    assert api.admin.delete(f"/identity/v3/projects/{gamma}").status_code == 204
    assert api.alice.get(URL).json()["rules"] == [kept]


def test_glance_s_answers_are_unchanged_without_rules(api: Callers, world: World) -> None:
    _, member = _offer(api.bob, world.projects["alpha"])
    assert member["status"] == "pending"
    assert set(member) == {"created_at", "image_id", "member_id", "schema", "status", "updated_at"}
