"""The work a server does in the background, each kind in rounds on its own schedule: purging the
recycle bin and expired tasks, delivering the webhook outbox, ending (and warning of) shares that
expire, the deprecation schedule, filling and tidying this node's image cache, and sending Glance's
notifications to the message bus. spyglass.api.app starts them in its lifespan and stops them at
shutdown.

A round runs in a worker thread, which cannot be interrupted: stopping waits for the rounds in
progress to end, so that none of them still uses the database once the application is gone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from anyio import to_thread

from spyglass.audit import bus as audit_bus
from spyglass.audit import delivery
from spyglass.blobs.registry import StoreSet
from spyglass.data import cache as image_cache
from spyglass.data import tasks
from spyglass.data.cache import ImageCache
from spyglass.db.engine import Database
from spyglass.images import deletion, deprecation_schedule
from spyglass.settings import Settings
from spyglass.sharing import expiry

log = logging.getLogger(__name__)

Round = Callable[[], object]


class Schedule:
    """Rounds of blocking work repeated every so many seconds until `stop`."""

    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], object]] = []

    def every(self, seconds: float, name: str, work: Round, *, first_after: float = 0) -> None:
        self._tasks.append(asyncio.create_task(self._repeat(seconds, name, work, first_after)))

    def on_stop(self, close: Callable[[], object]) -> None:
        """Run `close` once the rounds have ended (a connection a round used)."""
        self._closers.append(close)

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for close in self._closers:
            await to_thread.run_sync(close)

    async def _repeat(self, seconds: float, name: str, work: Round, first_after: float) -> None:
        if await self._stopped_within(first_after):
            return
        while True:
            try:
                await to_thread.run_sync(work)
            except Exception:
                # One failed round (the database restarting) must not end the schedule.
                log.exception("%s failed", name)
            if await self._stopped_within(seconds):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


def start(db: Database, stores: StoreSet, settings: Settings, cache: ImageCache | None = None) -> Schedule:
    """Start the background rounds; the caller awaits `stop()` at shutdown."""
    schedule = Schedule()
    if cache is not None:
        prefetch = functools.partial(image_cache.prefetch, cache, db, stores)
        schedule.every(CACHE_PREFETCH_SECONDS, "image cache prefetch", prefetch)
        schedule.every(
            CACHE_RECONCILE_SECONDS,
            "image cache reconcile",
            functools.partial(image_cache.reconcile, cache, db),
            first_after=CACHE_RECONCILE_SECONDS,
        )
    schedule.every(
        settings.purge_interval_seconds,
        "recycle bin purge",
        functools.partial(deletion.purge_expired, db, stores),
    )
    schedule.every(settings.purge_interval_seconds, "task purge", functools.partial(tasks.purge_expired, db))
    schedule.every(
        settings.member_expiry_poll_seconds,
        "member expiry round",
        functools.partial(expiry.run_due, db, settings.member_expiry_warning_days),
    )
    schedule.every(
        settings.deprecation_interval_seconds,
        "deprecation schedule",
        functools.partial(deprecation_schedule.run_due, db, stores, settings),
    )
    if settings.webhook_poll_seconds > 0:
        poll = settings.webhook_poll_seconds
        schedule.every(
            poll, "webhook delivery round", delivery.delivery_round(db, settings), first_after=poll
        )
    if settings.notifications_transport_url:
        send, bus = audit_bus.sending_round(db, settings)
        schedule.every(settings.notifications_poll_seconds, "notification round", send)
        schedule.on_stop(bus.close)
    schedule.every(
        STATISTICS_INTERVAL_SECONDS,
        "statistics",
        db.refresh_statistics,
        first_after=STATISTICS_INTERVAL_SECONDS,
    )
    return schedule


# How often this node looks at its cache queue (a queued image starts within a second or so), and
# how often it drops the cached files of images deleted on other nodes (the files are never served
# meanwhile: every download checks the image first).
CACHE_PREFETCH_SECONDS = 1.0
CACHE_RECONCILE_SECONDS = 60.0

# The query planner's statistics are refreshed this often (spyglass.db.engine).
STATISTICS_INTERVAL_SECONDS = 600
