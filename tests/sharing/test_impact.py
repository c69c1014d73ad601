"""Impact before harm: refusing to cut off recent consumers, when the owner opted in
(spyglass.images.impact)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from spyglass.db.engine import Database
from spyglass.db.tables import image_usage
from spyglass.settings import Settings
from spyglass.timeutil import utcnow
from tests.api.helpers import message
from tests.api.safety import OVERRIDE, callers_with, download, protect, share
from tests.conftest import Caller, Callers, World

# harm -> how the owner does it (with optional extra headers); answers 204 or 200 when it proceeds.
Harm = Callable[[Caller, str, str, dict[str, str]], int]


def _delete(owner: Caller, image_id: str, _member: str, headers: dict[str, str]) -> int:
    status: int = owner.delete(f"/v2/images/{image_id}", headers=headers).status_code
    return status


def _deactivate(owner: Caller, image_id: str, _member: str, headers: dict[str, str]) -> int:
    status: int = owner.post(f"/v2/images/{image_id}/actions/deactivate", headers=headers).status_code
    return status


def _make_private(owner: Caller, image_id: str, _member: str, headers: dict[str, str]) -> int:
    ops = [{"op": "replace", "path": "/visibility", "value": "private"}]
    media = {"Content-Type": "application/openstack-images-v2.1-json-patch", **headers}
    status: int = owner.request("PATCH", f"/v2/images/{image_id}", json=ops, headers=media).status_code
    return status


def _remove_member(owner: Caller, image_id: str, member: str, headers: dict[str, str]) -> int:
    status: int = owner.delete(f"/v2/images/{image_id}/members/{member}", headers=headers).status_code
    return status


HARMS = {"delete": _delete, "deactivate": _deactivate, "private": _make_private, "remove": _remove_member}


@pytest.mark.parametrize("harm", HARMS)
def test_a_protected_image_with_a_recent_consumer_is_refused_then_overridden(
    api: Callers, world: World, harm: str
) -> None:
    beta = world.projects["beta"]
    image_id = share(api.alice, beta, api.bob)
    protect(api.alice, image_id)
    download(api.bob, image_id)

    assert HARMS[harm](api.alice, image_id, beta, {}) == 409
    # Nothing happened: the member still downloads.
    assert api.bob.get(f"/v2/images/{image_id}/file").status_code == 200
    assert HARMS[harm](api.alice, image_id, beta, OVERRIDE) in (200, 204)


def test_the_refusal_names_the_affected_projects(api: Callers, world: World) -> None:
    beta, gamma = world.projects["beta"], world.projects["gamma"]
    image_id = share(api.alice, beta, api.bob)
    assert api.alice.post(f"/v2/images/{image_id}/members", json={"member": gamma}).status_code == 200
    protect(api.alice, image_id)
    download(api.bob, image_id)
    download(api.carol, image_id)
    download(api.alice, image_id)  # the owner itself is no consumer

    refused = api.alice.delete(f"/v2/images/{image_id}")
    assert refused.status_code == 409
    text = message(refused)
    assert beta in text and gamma in text and world.projects["alpha"] not in text
    assert "X-Spyglass-Override-Impact" in refused.json()["message"]
    # Removing one member only asks about that member.
    assert api.alice.delete(f"/v2/images/{image_id}/members/{gamma}").status_code == 409
    remove_text = message(api.alice.delete(f"/v2/images/{image_id}/members/{beta}"))
    assert beta in remove_text and gamma not in remove_text


def test_without_the_opt_in_glance_behaviour_is_kept(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    download(api.bob, image_id)
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204


def test_a_consumer_outside_the_window_does_not_count(api: Callers, db: Database, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    protect(api.alice, image_id)
    download(api.bob, image_id)
    with db.write() as conn:
        conn.execute(update(image_usage).values(last_download_at=utcnow() - timedelta(days=31)))
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204


def test_a_member_that_never_downloaded_does_not_count(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    protect(api.alice, image_id)
    assert api.alice.delete(f"/v2/images/{image_id}/members/{world.projects['beta']}").status_code == 204


def test_the_deployment_default_and_the_image_opting_out(
    settings: Settings, db: Database, world: World
) -> None:
    with callers_with(settings, db, world, protect_consumers=True, impact_window_days=7) as api:
        image_id = share(api.alice, world.projects["beta"], api.bob)
        download(api.bob, image_id)
        refused = api.alice.delete(f"/v2/images/{image_id}")
        assert refused.status_code == 409 and "last 7 days" in message(refused)
        protect(api.alice, image_id, "false")
        assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204


def test_only_a_true_header_overrides(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    protect(api.alice, image_id)
    download(api.bob, image_id)
    headers = {"X-Spyglass-Override-Impact": "no"}
    assert api.alice.delete(f"/v2/images/{image_id}", headers=headers).status_code == 409


def test_the_override_does_not_bypass_authorization(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    protect(api.alice, image_id)
    download(api.bob, image_id)
    assert api.bob.delete(f"/v2/images/{image_id}", headers=OVERRIDE).status_code == 403
    assert api.rita.delete(f"/v2/images/{image_id}", headers=OVERRIDE).status_code == 403
    assert api.admin.delete(f"/v2/images/{image_id}").status_code == 409
    assert api.admin.delete(f"/v2/images/{image_id}", headers=OVERRIDE).status_code == 204
