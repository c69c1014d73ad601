"""Image data: streaming upload and ranged download.

Upload is `queued -> saving -> active`, each step a compare-and-set, with no database transaction
held while bytes flow; a stage (spyglass.data.imports) follows the same protocol (`Receiving`).
The bytes go once, straight into the blob store, hashed and inspected on the way
(spyglass.ingest). Any failure (client gone, short body, size cap, store error, a digest the client
declared not matching, data the format inspection refuses) aborts the blob and puts the image back
to `queued`. Download answers the whole data or one byte range (spyglass.byte_ranges).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from anyio import to_thread
from sqlalchemy import Connection

from spyglass.blobs import BlobNotFound, BlobStore
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import ingest
from spyglass.data import ranges as byte_ranges
from spyglass.data.ranges import ByteRange
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden
from spyglass.images import blob_refs, deprecation, locations, notify, states
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action, Target, permits
from spyglass.images.queries import ImageRecord, set_status
from spyglass.settings import Settings

log = logging.getLogger(__name__)


def new_blob_key() -> str:
    """A fresh random key per attempt: a late writer never touches another upload's data, and a
    key shows nothing of the image (deduplication and copies share a blob across images)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Receiving:
    """One way data comes into an image (an upload, a stage), each step a compare-and-set: the
    image goes `queued -> status` before the bytes flow into `store`, back to `queued` (with the
    `requeue` columns) when they fail, and `finish` records them once they are in."""

    status: str
    store: BlobStore
    # (connection, image id, blob key, digest) -> False when the image went away meanwhile.
    finish: Callable[[Connection, str, str, ingest.Digest], bool]
    requeue: Mapping[str, Any] = field(default_factory=dict)


async def receive(
    how: Receiving,
    db: Database,
    ctx: RequestContext,
    image_id: str,
    key: str,
    body: AsyncIterator[bytes],
    *,
    content_length: int | None,
    settings: Settings,
) -> None:
    """Receive the body into `how.store` under `key`, with no database transaction held while
    bytes flow."""
    record = await to_thread.run_sync(_begin, how, db, ctx, image_id)
    try:
        expect = ingest.Expectations.of(record, settings, content_length)
        digest = await ingest.receive(how.store, key, body, expect)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(_requeue, how, db, image_id)
        raise
    if not await to_thread.run_sync(_finish, how, db, image_id, key, digest):
        # The image was deleted (or its status changed) while the bytes were flowing.
        await to_thread.run_sync(how.store.delete, key)
        raise Conflict(f"Image {image_id} was deleted or changed during the upload.")


def _begin(how: Receiving, db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.UPLOAD_IMAGE, lock=True)
        if record.status != states.QUEUED:
            raise Conflict(f"Image status transition from {record.status} to {how.status} is not allowed")
        if not set_status(conn, image_id, states.QUEUED, how.status):
            raise Conflict("Another upload to this image is in progress.")
        if how.status == states.SAVING:
            notify.preparing(conn, record, how.store.name)
        return record


def _finish(how: Receiving, db: Database, image_id: str, key: str, digest: ingest.Digest) -> bool:
    with db.write() as conn:
        return how.finish(conn, image_id, key, digest)


def _requeue(how: Receiving, db: Database, image_id: str) -> None:
    with db.write() as conn:
        set_status(conn, image_id, how.status, states.QUEUED, **how.requeue)


async def upload(
    db: Database,
    store: BlobStore,
    ctx: RequestContext,
    image_id: str,
    body: AsyncIterator[bytes],
    *,
    content_length: int | None,
    settings: Settings,
) -> None:
    """`PUT /file`: `queued -> saving -> active`, the data straight into the blob store."""
    key = new_blob_key()
    saving = Receiving(states.SAVING, store, partial(_activate, store.name))
    await receive(saving, db, ctx, image_id, key, body, content_length=content_length, settings=settings)
    # Count the blob's references (copies share it), or swap it for an identical blob already stored.
    await to_thread.run_sync(blob_refs.adopt, db, store, image_id, key)


def _activate(store_name: str, conn: Connection, image_id: str, key: str, digest: ingest.Digest) -> bool:
    done = set_status(
        conn, image_id, states.SAVING, states.ACTIVE, blob_key=key, store=store_name, **digest.columns()
    )
    if done:
        notify.data_received(conn, image_id, store_name, activated=True)
    return done


@dataclass(frozen=True)
class Download:
    record: ImageRecord
    size: int
    # None: the whole data.
    part: ByteRange | None = None
    # The store and key the data is read from: the first location that answers.
    store: BlobStore | None = None
    location_key: str = ""

    @property
    def key(self) -> str:
        return self.location_key or str(self.record.blob_key)


def prepare_download(
    db: Database,
    store: StoreSet,
    ctx: RequestContext,
    image_id: str,
    range_header: str | None = None,
) -> Download | None:
    """The data to send, or None when the image has none (the API answers 204, as Glance does).

    Raises RangeNotSatisfiable when `range_header` selects no byte of the data."""
    with db.read() as conn:
        record = load_authorized(conn, ctx, image_id, Action.DOWNLOAD_IMAGE)
    if record.status == states.DEACTIVATED and not permits(ctx, Action.DOWNLOAD_DEACTIVATED, Target()):
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    deprecation.refuse_obsolete_download(ctx, record)
    if record.status not in (states.ACTIVE, states.DEACTIVATED) or not record.blob_key:
        return None
    found = _first_available(store, record)
    if found is None:
        # Deleted a moment ago, or lost from every store: there is nothing to send.
        return None
    size = record.size or 0  # set whenever the image has data
    return Download(record, size, byte_ranges.requested(range_header, size), found[0], found[1])


def _first_available(stores: StoreSet, record: ImageRecord) -> tuple[BlobStore, str] | None:
    """The first location whose store has the blob; a missing blob or a failing store is skipped."""
    for location in locations.of(record):
        store = locations.store_of(stores, location)
        if store is None:
            continue
        try:
            store.size(location.key)
        except (BlobNotFound, OSError) as exc:
            log.warning("Image %s: no data at %s in store %r (%s)", record.id, location.key, store.name, exc)
            continue
        return store, location.key
    return None
