"""The deprecation schedule: the obsoleting warning and the deletion at delete_at, each exactly once,
also with two nodes on one database, through the normal deletion path with the safeguards overridden.

Rounds are run directly with a chosen `now`; one test lets the server's background task do it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from spyglass.blobs import FilesystemStore
from spyglass.blobs.registry import StoreSet
from spyglass.db.engine import Database
from spyglass.images import deprecation_schedule
from spyglass.settings import Settings
from spyglass.timeutil import isotime, utcnow
from tests.api.helpers import active
from tests.api.safety import callers_with, download, event_types, protect, share
from tests.conftest import Callers, World


def _stores(settings: Settings) -> StoreSet:
    return StoreSet.single(FilesystemStore(settings.blob_dir))


def _run(db: Database, settings: Settings, days: float) -> deprecation_schedule.Round:
    """One round of the schedule, `days` from now."""
    return deprecation_schedule.run_due(db, _stores(settings), settings, utcnow() + timedelta(days=days))


def _deprecate(api: Callers, image_id: str, **days: float) -> None:
    body = {name: isotime(utcnow() + timedelta(days=d)) for name, d in days.items()}
    response = api.alice.post(f"/v2/images/{image_id}/actions/deprecate", json=body)
    assert response.status_code == 200, response.text


def test_the_obsoleting_warning_is_sent_once_within_the_warning_days(
    api: Callers, world: World, db: Database, settings: Settings
) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    _deprecate(api, image_id, obsolete_at=10)
    stores = _stores(settings)
    assert deprecation_schedule.run_due(db, stores, settings, utcnow()).warned == 0
    four_days_on = utcnow() + timedelta(days=4)
    assert deprecation_schedule.run_due(db, stores, settings, four_days_on).warned == 1
    assert deprecation_schedule.run_due(db, stores, settings, four_days_on).warned == 0
    assert event_types(api.bob, image_id).count("image.obsoleting") == 1


def test_delete_at_deletes_once_overriding_the_impact_safeguards(
    api: Callers, world: World, db: Database, settings: Settings
) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    protect(api.alice, image_id)
    download(api.bob, image_id)  # a recent consumer: a plain DELETE would be refused
    _deprecate(api, image_id, obsolete_at=1, delete_at=2)
    strict = replace(settings, protect_consumers=True)
    stores = _stores(settings)
    assert deprecation_schedule.run_due(db, stores, strict, utcnow() + timedelta(days=1)).deleted == 0
    done = deprecation_schedule.run_due(db, stores, strict, utcnow() + timedelta(days=3))
    assert done.deleted == 1
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    assert deprecation_schedule.run_due(db, stores, strict, utcnow() + timedelta(days=4)).deleted == 0


@pytest.fixture
def binned(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    with callers_with(settings, db, world, recycle_retention_days=3, webhook_poll_seconds=0) as api:
        yield api


def test_with_the_recycle_bin_the_image_goes_into_the_bin(
    binned: Callers, db: Database, settings: Settings
) -> None:
    image_id = active(binned.alice)["id"]
    _deprecate(binned, image_id, delete_at=1)
    kept = replace(settings, recycle_retention_days=3)
    assert _run(db, kept, 2).deleted == 1
    assert binned.alice.get(f"/v2/images/{image_id}").json()["status"] == "pending_delete"
    bin_entry = binned.alice.get("/v2/recycle-bin").json()["images"][0]
    assert bin_entry["image_id"] == image_id
    # Restored by its owner, it is not deleted again by the same schedule.
    assert binned.alice.post(f"/v2/images/{image_id}/actions/restore").status_code == 200
    assert _run(db, kept, 3).deleted == 0


def test_a_protected_image_is_left_alone(api: Callers, db: Database, settings: Settings) -> None:
    image_id = active(api.alice)["id"]
    _deprecate(api, image_id, delete_at=1)
    ops = [{"op": "replace", "path": "/protected", "value": True}]
    assert api.alice.patch(f"/v2/images/{image_id}", ops).status_code == 200
    assert _run(db, settings, 2).deleted == 0
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 200


def test_two_nodes_on_one_database_warn_and_delete_once(
    api: Callers, world: World, db: Database, settings: Settings
) -> None:
    warned = share(api.alice, world.projects["beta"], api.bob)
    deleted = share(api.alice, world.projects["beta"], api.bob)
    _deprecate(api, warned, obsolete_at=3)
    _deprecate(api, deleted, delete_at=1)
    nodes = [Database(settings.database) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            rounds = list(pool.map(lambda node: _run(node, settings, 2), nodes))
    finally:
        for node in nodes:
            node.dispose()
    assert sum(r.warned for r in rounds) == 1
    assert sum(r.deleted for r in rounds) == 1
    assert event_types(api.alice, warned).count("image.obsoleting") == 1
    assert api.bob.get(f"/v2/images/{deleted}").status_code == 404


def test_the_background_task_deletes_at_delete_at(settings: Settings, db: Database, world: World) -> None:
    with callers_with(settings, db, world, deprecation_interval_seconds=1, webhook_poll_seconds=0) as api:
        image_id = active(api.alice)["id"]
        soon = isotime(utcnow() + timedelta(seconds=2))
        deprecated = api.alice.post(f"/v2/images/{image_id}/actions/deprecate", json={"delete_at": soon})
        assert deprecated.status_code == 200
        deadline = time.monotonic() + 15
        while api.alice.get(f"/v2/images/{image_id}").status_code != 404:
            assert time.monotonic() < deadline, "the schedule did not delete the image"
            time.sleep(0.2)
        assert event_types(api.alice, image_id)[-1] == "image.deleted"
