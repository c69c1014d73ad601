"""Quota accounting under concurrency and after a crash: parallel uploads that together would cross
image_size_total, and parallel creates past image_count_total, never leave the project above its
limit, on SQLite and PostgreSQL; recovery frees what an interrupted transfer reserved
(spyglass.images.quotas, spyglass.data.recovery)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from spyglass.blobs import FilesystemStore
from spyglass.context import RequestContext
from spyglass.data import transfer
from spyglass.data.recovery import recover
from spyglass.db.engine import Database
from spyglass.db.tables import images, quota_reservations
from spyglass.errors import Conflict, QuotaExceeded
from spyglass.identity import limits
from spyglass.identity.services import IMAGE
from spyglass.images import catalog, quotas
from spyglass.settings import Settings
from tests.conftest import World

MIB = 1024 * 1024
PARALLEL = 20
# The limit of both races: 10 MiB of image_size_total, 10 images of image_count_total.
LIMIT_MIB = 10
PATCH = "application/openstack-images-v2.1-json-patch"


def _ctx(world: World) -> RequestContext:
    return RequestContext(world.users["alice"], world.projects["alpha"], frozenset({"member"}))


def _admin() -> RequestContext:
    return RequestContext("admin", "admin", frozenset({"admin", "member", "reader"}))


def _register(db: Database, resource: str, default: int) -> None:
    entry = {"service_id": IMAGE.id, "resource_name": resource, "default_limit": default}
    limits.create_registered_limits(db, _admin(), "RegionOne", {"registered_limits": [entry]})


def _limit_beta(db: Database, world: World, resource: str, value: int) -> None:
    entry = {"service_id": IMAGE.id, "project_id": world.projects["beta"], "resource_name": resource}
    limits.create_limits(db, _admin(), "RegionOne", {"limits": [{**entry, "resource_limit": value}]})


def _owned(db: Database, project_id: str) -> int:
    with db.read() as conn:
        found = conn.execute(select(func.count()).select_from(images).where(images.c.owner == project_id))
        return int(found.scalar_one())


async def _body(size: int, fill: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        part = min(chunk, size - sent)
        sent += part
        # Let the other uploads run between chunks, as slow clients would.
        await asyncio.sleep(0)
        yield bytes([fill]) * part


def _used(db: Database, project_id: str) -> int:
    with db.read() as conn:
        stored = conn.execute(
            select(func.coalesce(func.sum(images.c.size), 0)).where(
                images.c.owner == project_id, images.c.status == "active"
            )
        ).scalar_one()
        held = conn.execute(select(func.count()).select_from(quota_reservations)).scalar_one()
    assert held == 0, "a finished transfer left a reservation behind"
    return int(stored)


async def _race(
    db: Database, store: FilesystemStore, ctx: RequestContext, settings: Settings, known: bool
) -> int:
    ids = [
        catalog.create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"}).id
        for _ in range(PARALLEL)
    ]

    async def one(index: int, image_id: str) -> bool:
        # Different data each, or identical uploads would share one blob.
        body = _body(MIB, index)
        try:
            await transfer.upload(
                db, store, ctx, image_id, body, content_length=MIB if known else None, settings=settings
            )
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(one(n, i) for n, i in enumerate(ids)))
    return sum(results)


@pytest.mark.parametrize("known", [True, False], ids=["content-length", "chunked"])
def test_parallel_uploads_never_cross_image_size_total(
    db: Database, settings: Settings, world: World, known: bool
) -> None:
    _register(db, quotas.IMAGE_SIZE_TOTAL, LIMIT_MIB)
    store = FilesystemStore(settings.blob_dir)
    ctx = _ctx(world)
    succeeded = asyncio.run(_race(db, store, ctx, settings, known))
    used = _used(db, world.projects["alpha"])
    assert used == succeeded * MIB
    assert used <= LIMIT_MIB * MIB
    if known:
        # Sizes known up front: every upload that fits gets in, and no more.
        assert succeeded == LIMIT_MIB
    # Sizes unknown, lock-step: each holds what it has received, so when the limit is reached
    # every one of them may be refused at its next chunk; never is the limit crossed.
    # Refused uploads left no data behind.
    assert len(list(store.iter_keys())) == succeeded


def test_recovery_frees_what_an_interrupted_upload_reserved(
    db: Database, settings: Settings, world: World
) -> None:
    _register(db, quotas.IMAGE_SIZE_TOTAL, 1)
    ctx = _ctx(world)
    rules = quotas.ENFORCED
    image = catalog.create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    with db.write() as conn:
        assert quotas.reserve(conn, rules, ctx.project_id, image.id, quotas.IMAGE_SIZE_TOTAL, MIB)
        conn.execute(images.update().where(images.c.id == image.id).values(status="saving"))
    other = catalog.create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    with pytest.raises(QuotaExceeded), db.write() as conn:
        quotas.reserve(conn, rules, ctx.project_id, other.id, quotas.IMAGE_SIZE_TOTAL, 1)
    # The process died mid-upload; the next start recovers.
    recover(db, FilesystemStore(settings.blob_dir))
    with db.write() as conn:
        assert quotas.reserve(conn, rules, ctx.project_id, other.id, quotas.IMAGE_SIZE_TOTAL, MIB)


def test_an_image_deleted_mid_upload_ends_the_upload_with_a_conflict(
    db: Database, settings: Settings, world: World
) -> None:
    _register(db, quotas.IMAGE_SIZE_TOTAL, 1)  # near the limit, every chunk extends the reservation
    ctx = _ctx(world)
    store = FilesystemStore(settings.blob_dir)
    image = catalog.create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})

    sent = []

    async def body() -> AsyncIterator[bytes]:
        for n in range(8):
            if n == 2:
                with db.write() as conn:
                    conn.execute(images.delete().where(images.c.id == image.id))
            sent.append(n)
            yield b"d" * (64 * 1024)

    with pytest.raises(Conflict):
        asyncio.run(transfer.upload(db, store, ctx, image.id, body(), content_length=None, settings=settings))
    assert sent == [0, 1, 2], "the upload ends at the first chunk after the delete, not at its end"
    assert list(store.iter_keys()) == []
    _used(db, world.projects["alpha"])


def test_parallel_creates_never_cross_image_count_total(db: Database, world: World) -> None:
    _register(db, quotas.IMAGE_COUNT_TOTAL, LIMIT_MIB)
    ctx = _ctx(world)

    def one(_: int) -> bool:
        try:
            catalog.create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
        except QuotaExceeded:
            return False
        return True

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        succeeded = sum(pool.map(one, range(PARALLEL)))
    assert succeeded == _owned(db, world.projects["alpha"]) == LIMIT_MIB


def test_owner_changes_racing_creates_never_cross_image_count_total(db: Database, world: World) -> None:
    """Half the threads create images in beta, the other half give alpha's images to beta (as an
    admin's PATCH of the owner does): beta ends at its limit, never past it."""
    _register(db, quotas.IMAGE_COUNT_TOTAL, 100)
    beta = world.projects["beta"]
    _limit_beta(db, world, quotas.IMAGE_COUNT_TOTAL, LIMIT_MIB)
    alpha_images = [
        catalog.create_image(db, _ctx(world), {"disk_format": "raw", "container_format": "bare"}).id
        for _ in range(PARALLEL // 2)
    ]
    bob = RequestContext(world.users["bob"], beta, frozenset({"member"}))
    move = [{"op": "replace", "path": "/owner", "value": beta}]

    def one(n: int) -> bool:
        try:
            if n % 2:
                catalog.create_image(db, bob, {"disk_format": "raw", "container_format": "bare"})
            else:
                catalog.update_image(db, _admin(), alpha_images[n // 2], move, PATCH)
        except QuotaExceeded:
            return False
        return True

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        succeeded = sum(pool.map(one, range(PARALLEL)))
    assert succeeded == _owned(db, beta) == LIMIT_MIB


def test_an_upload_given_to_another_project_mid_stream_counts_against_the_new_owner(
    db: Database, settings: Settings, world: World
) -> None:
    """An admin gives the image to beta while alpha uploads it (length unknown, so the reservation
    grows as the data comes): the rest of the upload is checked against beta's limit, 2 MiB, which
    the third MiB crosses (alpha's, 3 MiB, would have let it go on)."""
    _register(db, quotas.IMAGE_SIZE_TOTAL, 3)
    _limit_beta(db, world, quotas.IMAGE_SIZE_TOTAL, 2)
    ctx = _ctx(world)
    store = FilesystemStore(settings.blob_dir)
    image = catalog.create_image(db, ctx, {"disk_format": "raw", "container_format": "bare"})
    move = [{"op": "replace", "path": "/owner", "value": world.projects["beta"]}]

    sent = []

    async def body() -> AsyncIterator[bytes]:
        for n in range(5):
            if n == 1:  # alpha holds the first MiB; beta has room for it
                catalog.update_image(db, _admin(), image.id, move, PATCH)
            await asyncio.sleep(0)
            sent.append(n)
            yield bytes([n]) * MIB

    with pytest.raises(QuotaExceeded) as refused:
        asyncio.run(transfer.upload(db, store, ctx, image.id, body(), content_length=None, settings=settings))
    assert world.projects["beta"] in str(refused.value)
    assert sent == [0, 1, 2], "refused as the third MiB came, not at the end"
    assert list(store.iter_keys()) == []
    with db.read() as conn:
        row = conn.execute(select(images.c.owner, images.c.status).where(images.c.id == image.id)).one()
        held = conn.execute(select(func.count()).select_from(quota_reservations)).scalar_one()
    assert (row.owner, row.status, held) == (world.projects["beta"], "queued", 0)
