"""Adding a location, called as the API calls it, and what start-up recovery does to a reading
of the location's data that a crash cut off."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from spyglass.blobs import FilesystemStore
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import location_import
from spyglass.data.recovery import recover
from spyglass.db.engine import Database
from spyglass.errors import Forbidden
from spyglass.images import queries as q
from spyglass.images.catalog import create_image
from spyglass.settings import Settings
from tests.conftest import World

DATA = b"snapshot bytes" * 100


@pytest.fixture
def stores(settings: Settings) -> StoreSet:
    return StoreSet.single(FilesystemStore(settings.blob_dir, name="fs"))


def _owner(world: World, *, service_token: bool) -> RequestContext:
    return RequestContext(
        user_id=world.users["alice"],
        project_id=world.projects["alpha"],
        roles=frozenset({"member", "reader"}),
        service_roles=frozenset({"service"}) if service_token else frozenset(),
    )


def _blob(stores: StoreSet) -> tuple[str, str]:
    key = str(uuid.uuid4())
    writer = stores.default.writer(key)
    writer.write(DATA)
    writer.commit()
    return key, stores.url("fs", key)


def test_the_owner_needs_the_service_token(
    db: Database, stores: StoreSet, world: World, settings: Settings
) -> None:
    image = create_image(
        db, _owner(world, service_token=False), {"disk_format": "raw", "container_format": "bare"}
    )
    _, url = _blob(stores)
    with pytest.raises(Forbidden):
        location_import.add(db, stores, _owner(world, service_token=False), image.id, {"url": url}, settings)


def test_a_crash_while_checking_the_hash_requeues_the_image(
    db: Database, stores: StoreSet, world: World, settings: Settings
) -> None:
    ctx = _owner(world, service_token=True)
    image = create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    key, url = _blob(stores)
    vouched = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(DATA).hexdigest()}
    job = location_import.add(db, stores, ctx, image.id, {"url": url, "validation_data": vouched}, settings)
    assert job is not None and job.expected == vouched["os_hash_value"]
    with db.read() as conn:
        found = q.fetch_image(conn, image.id, None)
    assert found is not None and found.status == "importing" and found.blob_key == key
    # The server stops before the background reading ends: start-up recovery.
    recover(db, stores.default)
    with db.read() as conn:
        found = q.fetch_image(conn, image.id, None)
    assert found is not None
    assert (found.status, found.blob_key, found.size) == ("queued", None, None)
    assert "os_glance_import_task" not in found.properties
    assert key not in set(stores.default.iter_keys())


def test_a_crash_while_hashing_an_active_image_keeps_its_location(
    db: Database, stores: StoreSet, world: World, settings: Settings
) -> None:
    ctx = _owner(world, service_token=True)
    image = create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    key, url = _blob(stores)
    job = location_import.add(db, stores, ctx, image.id, {"url": url}, settings)
    assert job is not None and job.expected is None
    recover(db, stores.default)
    with db.read() as conn:
        found = q.fetch_image(conn, image.id, None)
    assert found is not None
    assert (found.status, found.blob_key, found.size, found.os_hash_value) == ("active", key, len(DATA), None)
    assert "os_glance_import_task" not in found.properties
    assert key in set(stores.default.iter_keys())


def test_the_reading_sets_the_hashes_and_releases_the_lock(
    db: Database, stores: StoreSet, world: World, settings: Settings
) -> None:
    ctx = _owner(world, service_token=True)
    image = create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    _, url = _blob(stores)
    job = location_import.add(db, stores, ctx, image.id, {"url": url}, settings)
    assert job is not None
    location_import.hash_location(job, db, stores)
    with db.read() as conn:
        found = q.fetch_image(conn, image.id, None)
    assert found is not None
    assert found.os_hash_value == hashlib.sha512(DATA).hexdigest()
    assert found.checksum == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert "os_glance_import_task" not in found.properties


def test_a_location_whose_data_went_leaves_an_active_image_without_hashes(
    db: Database, stores: StoreSet, world: World, settings: Settings
) -> None:
    ctx = _owner(world, service_token=True)
    image = create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    key, url = _blob(stores)
    job = location_import.add(db, stores, ctx, image.id, {"url": url}, settings)
    assert job is not None
    stores.default.delete(key)
    location_import.hash_location(job, db, stores)
    with db.read() as conn:
        found = q.fetch_image(conn, image.id, None)
    assert found is not None
    assert (found.status, found.os_hash_value) == ("active", None)
    assert "os_glance_import_task" not in found.properties
