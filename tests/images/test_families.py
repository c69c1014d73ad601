"""Families: the newest active, non-deprecated image with a `spyglass_family` that the caller can see."""

from __future__ import annotations

from spyglass.db.engine import Database
from spyglass.images import families
from tests.api.helpers import active, create
from tests.api.safety import share
from tests.conftest import Callers, World

LATEST = "/v2/families/ubuntu-24.04/latest"


def test_the_owner_sets_the_family_despite_the_reserved_prefix(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    ops = [{"op": "add", "path": "/spyglass_family", "value": "ubuntu-24.04"}]
    assert api.alice.patch(f"/v2/images/{image_id}", ops).json()["spyglass_family"] == "ubuntu-24.04"
    assert api.rita.patch(f"/v2/images/{image_id}", ops).status_code == 403


def test_newest_active_non_deprecated(api: Callers) -> None:
    first = active(api.alice, spyglass_family="ubuntu-24.04")["id"]
    second = active(api.alice, spyglass_family="ubuntu-24.04")["id"]
    create(api.alice, spyglass_family="ubuntu-24.04")  # queued: no data yet
    active(api.alice, spyglass_family="debian-12")
    assert api.alice.get(LATEST).json()["id"] == second
    api.alice.post(f"/v2/images/{second}/actions/deprecate", json={"replacement": first})
    assert api.alice.get(LATEST).json()["id"] == first
    api.alice.post(f"/v2/images/{first}/actions/deprecate")
    assert api.alice.get(LATEST).status_code == 404


def test_a_shared_image_counts_once_accepted(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], spyglass_family="ubuntu-24.04")
    assert api.bob.get(LATEST).status_code == 404
    assert api.carol.get(LATEST).status_code == 404
    accepted = api.bob.put(
        f"/v2/images/{image_id}/members/{world.projects['beta']}", json={"status": "accepted"}
    )
    assert accepted.status_code == 200
    assert api.bob.get(LATEST).json()["id"] == image_id
    assert api.carol.get(LATEST).status_code == 404
    assert api.admin.get(LATEST).json()["id"] == image_id


def test_the_callers_own_newer_image_wins(api: Callers, world: World) -> None:
    share(api.alice, world.projects["beta"], api.bob, spyglass_family="ubuntu-24.04")
    own = active(api.bob, spyglass_family="ubuntu-24.04")["id"]
    assert api.bob.get(LATEST).json()["id"] == own
    assert api.alice.get(LATEST).json()["id"] != own


def test_ties_on_created_at_go_to_the_larger_id(api: Callers, db: Database) -> None:
    ids = [active(api.alice, spyglass_family="ubuntu-24.04")["id"] for _ in range(2)]
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE images SET created_at = '2030-01-01 00:00:00'")
    assert api.alice.get(LATEST).json()["id"] == max(ids)


def test_an_overlong_family_is_simply_not_found(api: Callers) -> None:
    assert api.alice.get(f"/v2/families/{'x' * (families.FAMILY_MAX + 1)}/latest").status_code == 404
