"""The deprecation schedule: warn consumers before an image becomes obsolete, delete it at delete_at.

`run_due` is one round; spyglass.background runs it every `deprecation_interval_seconds` on each
node. Each warning and each deletion is claimed with a compare-and-set on its image_deprecations
row in the transaction that does the work, so with several nodes on one database it happens once,
and a round that fails half-way rolls its claim back with its work.

The deletion goes through the normal deletion path (spyglass.images.deletion): into the recycle
bin when a retention is configured, for good otherwise. The impact safeguards are overridden (the
owner decided in advance); a protected image, or one already in the bin, is left alone. The
deletion is attributed to whoever set delete_at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from spyglass.audit import events
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.images import deletion, locations, states
from spyglass.images import deprecation_queries as dq
from spyglass.images import queries as q
from spyglass.images.deprecation import tell_consumers
from spyglass.images.impact import Safeguards
from spyglass.images.locations import Location
from spyglass.settings import Settings
from spyglass.timeutil import isotime, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    """What one round did."""

    warned: int = 0
    deleted: int = 0


def run_due(db: Database, stores: StoreSet, settings: Settings, now: datetime | None = None) -> Round:
    now = now or utcnow()
    horizon = now + timedelta(days=settings.deprecation_warning_days)
    with db.read() as conn:
        to_warn = dq.due_warnings(conn, horizon)
        to_delete = dq.due_deletions(conn, now)
    warned = sum(_warn(db, image_id, horizon, now) for image_id in to_warn)
    guard = Safeguards.from_settings(settings, override=True)
    deleted = sum(_delete(db, stores, guard, image_id, now) for image_id in to_delete)
    if warned or deleted:
        log.info("deprecation schedule: %d warning(s), %d deletion(s)", warned, deleted)
    return Round(warned, deleted)


def _warn(db: Database, image_id: str, horizon: datetime, now: datetime) -> bool:
    with db.write() as conn:
        if not dq.claim_warning(conn, image_id, horizon, now):
            return False  # another node (or an earlier round) sent it
        record = q.fetch_image(conn, image_id, None)
        row = dq.fetch(conn, image_id)
        if record is None or row is None or record.status == states.PENDING_DELETE:
            return False
        after = {
            "replacement": row["replacement"],
            "obsolete_at": isotime(row["obsolete_at"]),
            "delete_at": isotime(row["delete_at"]),
        }
        tell_consumers(conn, None, record, events.IMAGE_OBSOLETING, after)
    return True


def _delete(db: Database, stores: StoreSet, guard: Safeguards, image_id: str, now: datetime) -> bool:
    unreferenced: list[Location] = []
    with db.write() as conn:
        record = q.fetch_image(conn, image_id, None, lock=True)
        if not dq.claim_deletion(conn, image_id, now):
            return False
        row = dq.fetch(conn, image_id)
        if record is None or row is None:
            return False
        if record.protected or record.status == states.PENDING_DELETE:
            log.warning("image %s is due for deletion but is %s; left alone", image_id, _why(record))
            return False
        unreferenced = deletion.dispose(conn, _scheduled_by(row), record, guard)
    locations.delete_blobs(stores, unreferenced)
    return True


def _why(record: q.ImageRecord) -> str:
    return "protected" if record.protected else "already in the recycle bin"


def _scheduled_by(row: dict[str, object]) -> RequestContext:
    """Who decided the deletion, for the recycle bin's deleted_by and the event's actor. It carries
    no role: it is never authorized for anything."""
    user = row["deprecated_by_user"]
    project = row["deprecated_by_project"]
    return RequestContext(
        user_id=str(user or ""), project_id=str(project) if project else None, roles=frozenset()
    )
