"""The sharing-safety work a server does in the background: purging the recycle bin on a schedule,
delivering the webhook outbox, ending (and warning of) shares that expire, and the deprecation
schedule. spyglass.api.app starts them in its lifespan."""

from __future__ import annotations

import asyncio
import logging

from anyio import to_thread

from spyglass.audit import delivery as webhook_worker
from spyglass.blobs.registry import StoreSet
from spyglass.db.engine import Database
from spyglass.images import deletion as recycle
from spyglass.images import deprecation_schedule
from spyglass.settings import Settings
from spyglass.sharing import expiry

log = logging.getLogger(__name__)


def start(db: Database, stores: StoreSet, settings: Settings) -> list[asyncio.Task[None]]:
    """Start the background tasks; the caller cancels them at shutdown."""
    tasks = [
        asyncio.create_task(_purge_on_schedule(db, stores, settings.purge_interval_seconds)),
        asyncio.create_task(_expire_on_schedule(db, settings)),
        asyncio.create_task(_deprecations_on_schedule(db, stores, settings)),
    ]
    if settings.webhook_poll_seconds > 0:
        tasks.append(asyncio.create_task(webhook_worker.run(db, settings)))
    return tasks


async def _purge_on_schedule(db: Database, stores: StoreSet, interval: int) -> None:
    while True:
        try:
            await to_thread.run_sync(recycle.purge_expired, db, stores)
        except Exception:
            # One failed round (the database restarting) must not end the schedule.
            log.exception("recycle bin purge failed")
        await asyncio.sleep(interval)


async def _expire_on_schedule(db: Database, settings: Settings) -> None:
    while True:
        try:
            await to_thread.run_sync(expiry.run_due, db, settings.member_expiry_warning_days)
        except Exception:
            log.exception("member expiry round failed")
        await asyncio.sleep(settings.member_expiry_poll_seconds)


async def _deprecations_on_schedule(db: Database, stores: StoreSet, settings: Settings) -> None:
    """Obsoleting warnings and deletions at delete_at (spyglass.images.deprecation_schedule)."""
    while True:
        try:
            await to_thread.run_sync(deprecation_schedule.run_due, db, stores, settings)
        except Exception:
            log.exception("deprecation schedule failed")
        await asyncio.sleep(settings.deprecation_interval_seconds)
