"""Usage tracking: who downloads an image, aggregated per image and consumer project.

Each download adds one to the project's count and its bytes and moves its last time, with one
UPSERT (INSERT ... ON CONFLICT DO UPDATE) issued when the download response has been prepared,
never while the bytes stream. A range request counts the bytes of its range. Glance's image.send
goes to the message bus once the bytes went out, with how many did. Recording is best
effort: a download never fails because its accounting could not be written. An image deleted
while its bytes went out is the normal end of that race (a debug line); any other failure is logged.

`GET /v2/images/{id}/usage`: the owner project and admins read every consumer's row, another
project that can see the image reads its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from spyglass.audit import notifications
from spyglass.context import RequestContext
from spyglass.data.transfer import Download
from spyglass.db.engine import Database
from spyglass.images import notify
from spyglass.images.catalog import load_authorized, target_of
from spyglass.images.policy import Action, permits
from spyglass.images.queries import ImageRecord
from spyglass.sharing import queries
from spyglass.sharing.queries import Usage
from spyglass.timeutil import isotime, utcnow

log = logging.getLogger(__name__)


def record(db: Database, project_id: str, image_id: str, nbytes: int) -> None:
    """Count one download of `nbytes` by the project."""
    try:
        with db.write() as conn:
            queries.count_download(conn, image_id, project_id, nbytes, utcnow())
    except IntegrityError:
        # The image row is gone (foreign key): deleted after the download looked it up.
        log.debug("image %s was deleted during its download by %s; not counted", image_id, project_id)
    except SQLAlchemyError:
        # The database is unavailable: the bytes still go.
        log.warning("could not record a download of image %s by %s", image_id, project_id, exc_info=True)


def _planned(found: Download) -> int:
    part = found.part
    return found.size if part is None else part.end - part.start


async def record_download(db: Database, ctx: RequestContext, found: Download) -> None:
    """The download handler's call, once its response is prepared: the whole data, or the range."""
    if ctx.project_id:
        await to_thread.run_sync(record, db, ctx.project_id, found.record.id, _planned(found))


@dataclass(frozen=True)
class SendNotice:
    """What Glance's image.send says of a download besides the bytes sent."""

    record: ImageRecord
    project_id: str
    user_id: str
    destination_ip: str | None
    planned: int


def send_notice(ctx: RequestContext, found: Download, destination_ip: str | None) -> SendNotice | None:
    if not ctx.project_id:
        return None
    return SendNotice(found.record, ctx.project_id, ctx.user_id, destination_ip, _planned(found))


def notify_sent(db: Database, notice: SendNotice, sent: int) -> None:
    """Queue image.send once the data went out, with the bytes the server took: fewer than planned
    when the client went away or the store failed, and then at ERROR priority, as Glance does."""
    priority = notifications.INFO if sent == notice.planned else notifications.ERROR
    try:
        with db.write() as conn:
            notify.sent(
                conn, notice.record, sent, notice.project_id, notice.user_id, notice.destination_ip, priority
            )
    except SQLAlchemyError:
        log.warning("could not queue image.send of image %s", notice.record.id, exc_info=True)


def list_usage(db: Database, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        record_ = load_authorized(conn, ctx, image_id, Action.GET_USAGE)
        everyone = permits(ctx, Action.GET_ALL_USAGE, target_of(record_))
        rows = queries.usage_of(conn, image_id, None if everyone else ctx.project_id or "")
    return [_document(r) for r in rows]


def _document(usage: Usage) -> dict[str, Any]:
    return {
        "project_id": usage.project_id,
        "downloads": usage.downloads,
        "bytes": usage.bytes,
        "first_download_at": isotime(usage.first_download_at),
        "last_download_at": isotime(usage.last_download_at),
    }
