"""Image ids are never reused: a deleted, binned or purged image's id stays taken, and its audit
trail stays with it (spyglass.images.catalog, spyglass.images.queries, spyglass.images.history)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from spyglass.blobs import FilesystemStore
from spyglass.blobs.registry import StoreSet
from spyglass.db.engine import Database
from spyglass.db.migrate import schema_differences, upgrade
from spyglass.db.tables import image_events, image_properties, images, used_image_ids
from spyglass.images.deletion import purge_expired
from spyglass.settings import Settings
from spyglass.timeutil import utcnow
from tests.api.helpers import active, create
from tests.api.safety import callers_with, event_types, share
from tests.conftest import POSTGRES, Caller, Callers, World, _database_url, _postgres_admin
from tests.conftest import _recreate as _recreate_database

TAKEN_TYPES = ["member.added", "member.status_changed", "image.deleted"]


@pytest.fixture
def binned(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    with callers_with(settings, db, world, recycle_retention_days=7) as api:
        yield api


def _recreate(caller: Caller, image_id: str) -> tuple[int, str]:
    """The status and body of creating an image with this id, the id itself blanked out."""
    response = caller.post("/v2/images", json={"id": image_id, "disk_format": "raw"})
    return response.status_code, response.text.replace(image_id, "ID")


def test_a_deleted_shared_image_id_cannot_be_taken_over(api: Callers, world: World) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204

    for caller in (api.bob, api.carol, api.alice, api.admin):
        assert _recreate(caller, image_id)[0] == 409
    assert api.alice.get(f"/v2/images/{image_id}").status_code == 404
    # The trail is still the deleted image's, read by its owner, and by the ex-member its own part.
    assert event_types(api.alice, image_id) == TAKEN_TYPES
    assert event_types(api.bob, image_id) == TAKEN_TYPES
    assert api.carol.get(f"/v2/images/{image_id}/events").status_code == 404


def test_every_taken_id_gets_the_same_409(
    binned: Callers, world: World, settings: Settings, db: Database
) -> None:
    private = create(binned.alice, visibility="private")["id"]
    shared = share(binned.alice, world.projects["gamma"], binned.carol)
    public = create(binned.admin, visibility="public")["id"]
    in_bin = active(binned.alice)["id"]
    assert binned.alice.delete(f"/v2/images/{in_bin}").status_code == 204
    purged = active(binned.alice, b"purged bytes")["id"]
    assert binned.alice.delete(f"/v2/images/{purged}").status_code == 204
    assert binned.alice.delete(f"/v2/images/{purged}").status_code == 204  # from the bin: for good
    expired = active(binned.alice, b"expired bytes")["id"]
    assert binned.alice.delete(f"/v2/images/{expired}").status_code == 204
    assert (
        purge_expired(db, StoreSet.single(FilesystemStore(settings.blob_dir)), utcnow() + timedelta(days=8))
        == 2
    )

    taken = {"private": private, "shared": shared, "public": public, "in_bin": in_bin}
    taken |= {"purged": purged, "expired": expired}
    answers = {name: _recreate(binned.carol, image_id) for name, image_id in taken.items()}
    assert len(set(answers.values())) == 1, answers
    status, body = answers["private"]
    assert status == 409 and "Image with identifier ID already exists!" in body


def test_an_uppercase_twin_of_an_id_is_refused(api: Callers) -> None:
    image_id = create(api.alice, visibility="private")["id"]
    twin = _recreate(api.bob, image_id.upper())
    assert twin[0] == 400
    # The same answer for an id no image has: nothing is learned about the existing one.
    unused = str(uuid.uuid4())
    assert _recreate(api.bob, unused.upper()) == twin
    assert _recreate(api.bob, unused)[0] == 201


def test_the_holder_of_an_id_reused_before_the_upgrade_reads_only_its_own_events(
    api: Callers, world: World, db: Database
) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    assert api.alice.delete(f"/v2/images/{image_id}").status_code == 204
    # An older release let another project create an image under the deleted image's id.
    now = utcnow()
    base = {"min_disk": 0, "min_ram": 0, "protected": False, "os_hidden": False}
    with db.write() as conn:
        conn.execute(
            insert(images).values(
                id=image_id,
                owner=world.projects["gamma"],
                status="queued",
                visibility="shared",
                created_at=now,
                updated_at=now,
                **base,
            )
        )
    assert api.carol.get(f"/v2/images/{image_id}").status_code == 200
    assert event_types(api.carol, image_id) == []
    assert (
        api.carol.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]}).status_code
        == 200
    )

    assert event_types(api.carol, image_id) == ["member.added"]
    # Alice's trail stays hers, and Bob's old membership does not extend into Carol's image.
    assert event_types(api.alice, image_id) == TAKEN_TYPES
    assert event_types(api.bob, image_id) == [*TAKEN_TYPES, "member.added"]
    assert api.carol.delete(f"/v2/images/{image_id}").status_code == 204
    assert event_types(api.carol, image_id) == ["member.added", "image.deleted"]
    assert event_types(api.alice, image_id) == TAKEN_TYPES
    assert len(event_types(api.admin, image_id)) == 5


@pytest.fixture
def empty_db(tmp_path: Path, worker_id: str) -> Iterator[Database]:
    """A database without any schema, on the backend the tests run on."""
    if not POSTGRES:
        database = Database(f"sqlite:///{tmp_path}/old.db")
        yield database
        database.dispose()
        return
    admin, name = _postgres_admin(), f"spyglass_ids_{worker_id}"
    _recreate_database(admin, name)
    database = Database(_database_url(name))
    yield database
    database.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_upgrading_reserves_every_id_known_to_have_been_used(empty_db: Database) -> None:
    live, deleted, source = (str(uuid.uuid4()) for _ in range(3))
    upgrade(empty_db, "0003")
    now = utcnow()
    with empty_db.write() as conn:
        conn.execute(
            insert(images).values(
                id=live.upper(),
                status="active",
                visibility="private",
                created_at=now,
                updated_at=now,
                min_disk=0,
                min_ram=0,
                protected=False,
                os_hidden=False,
            )
        )
        conn.execute(
            insert(image_properties).values(
                image_id=live.upper(), name="spyglass_copied_from_image", value=source
            )
        )
        conn.execute(
            insert(image_events).values(image_id=deleted, event_type="image.deleted", created_at=now)
        )
    upgrade(empty_db)

    with empty_db.read() as conn:
        reserved = set(conn.execute(select(used_image_ids.c.id)).scalars())
    assert reserved == {live, deleted, source}
    assert schema_differences(empty_db) == []
