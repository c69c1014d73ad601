"""Image data: streaming upload and ranged download.

Upload is `queued -> saving -> active`, each step a compare-and-set, with no database transaction
held while bytes flow; a stage (spyglass.data.imports) follows the same protocol (`Receiving`).
The bytes go once, straight into the blob store, hashed, inspected and (a signed image's) verified
on the way (spyglass.ingest, spyglass.data.signatures). Any failure (client gone, short body, size
cap, store error, a digest the client declared not matching, data the format inspection refuses, a
signature that does not verify) aborts the blob and puts the image back to `queued`. Quotas
(spyglass.images.quotas) are checked when the upload begins, held as the bytes come, and checked
once more when the size is known. Download answers the whole data or one byte range
(spyglass.byte_ranges).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio import to_thread
from sqlalchemy import Connection

from spyglass.blobs import BlobNotFound, BlobStore
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import ingest, signatures
from spyglass.data import ranges as byte_ranges
from spyglass.data.ranges import ByteRange
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden
from spyglass.images import blob_refs, deprecation, locations, notify, states
from spyglass.images import quotas as quota
from spyglass.images.catalog import load_authorized, target_of
from spyglass.images.policy import Action, permits
from spyglass.images.queries import ImageRecord, set_status
from spyglass.images.quotas import ENFORCED, Quotas
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
    `requeue` columns) when they fail, and `finish` records them once they are in. `resource` is
    the quota the bytes count against (spyglass.images.quotas)."""

    status: str
    store: BlobStore
    # (connection, image id, blob key, digest) -> False when the image went away meanwhile.
    finish: Callable[[Connection, str, str, ingest.Digest], bool]
    resource: str
    requeue: Mapping[str, Any] = field(default_factory=dict)
    # Verify a signed image's signature in this pass (a stage does not: its import does, as on Glance).
    verify_signature: bool = True


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
    token: str | None = None,
    quotas: Quotas = ENFORCED,
) -> None:
    """Receive the body into `how.store` under `key`, with no database transaction held while
    bytes flow. `token` is the caller's, for a key manager that holds a signed image's certificate.
    The quota is checked before, as the bytes come (past what was reserved) and after."""
    record = await to_thread.run_sync(_begin, how, db, ctx, image_id, quotas, content_length)
    grow = partial(quota.extend, db, quotas, record.owner, image_id, how.resource)
    try:
        check = None
        if how.verify_signature:
            check = await to_thread.run_sync(signature_check, record, settings, ctx.project_id, token)
        expect = ingest.Expectations.of(record, settings, content_length, check)
        counted = metered(body, content_length or 0, grow) if quotas.enabled else body
        digest = await ingest.receive(how.store, key, counted, expect)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(_requeue, how, db, image_id)
        raise
    try:
        finished = await to_thread.run_sync(_finish, how, db, quotas, image_id, key, digest)
    except BaseException:
        # Over the limit once the size is known: the data goes, the image is as it was.
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(how.store.delete, key)
            await to_thread.run_sync(_requeue, how, db, image_id)
        raise
    if not finished:
        # The image was deleted (or its status changed) while the bytes were flowing.
        await to_thread.run_sync(how.store.delete, key)
        raise Conflict(f"Image {image_id} was deleted or changed during the upload.")


def signature_check(
    record: ImageRecord, settings: Settings, project_id: str | None, token: str | None
) -> signatures.SignatureCheck | None:
    """What a signed image's data must verify against (blocking: it fetches the certificate)."""
    certificates = signatures.certificates_for(settings, token, project_id)
    return signatures.prepare(record.id, record.properties, certificates)


async def metered(body: AsyncIterator[bytes], held: int, grow: Callable[[int], int]) -> AsyncIterator[bytes]:
    """The body, unchanged, with the quota reservation kept ahead of the bytes received: `grow`
    (in a worker thread) refuses the chunk that would cross the limit."""
    size = 0
    async for chunk in body:
        size += len(chunk)
        if size > held:
            held = await to_thread.run_sync(grow, size)
        yield chunk


def _begin(
    how: Receiving, db: Database, ctx: RequestContext, image_id: str, quotas: Quotas, length: int | None
) -> ImageRecord:
    # Usually the owner; any other's limits are read in the transaction.
    quotas.read_ahead(ctx.project_id)
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.UPLOAD_IMAGE, lock=True)
        if record.status != states.QUEUED:
            raise Conflict(f"Image status transition from {record.status} to {how.status} is not allowed")
        # Before the status changes, while the image is not yet counted among the uploads.
        quota.claim(conn, quotas, record.owner, {quota.IMAGE_COUNT_UPLOADING: 1})
        if length:
            quota.reserve(conn, quotas, record.owner, image_id, how.resource, length)
        if not set_status(conn, image_id, states.QUEUED, how.status):
            raise Conflict("Another upload to this image is in progress.")
        if how.status == states.SAVING:
            notify.preparing(conn, record, how.store.name)
        return record


def _finish(
    how: Receiving,
    db: Database,
    quotas: Quotas,
    image_id: str,
    key: str,
    digest: ingest.Digest,
) -> bool:
    with db.write() as conn:
        quota.settle(conn, quotas, image_id, how.resource, digest.size)
        return how.finish(conn, image_id, key, digest)


def _requeue(how: Receiving, db: Database, image_id: str) -> None:
    with db.write() as conn:
        quota.release(conn, image_id)
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
    token: str | None = None,
    quotas: Quotas = ENFORCED,
) -> None:
    """`PUT /file`: `queued -> saving -> active`, the data straight into the blob store."""
    key = new_blob_key()
    saving = Receiving(states.SAVING, store, partial(_activate, store.name), quota.IMAGE_SIZE_TOTAL)
    await receive(
        saving,
        db,
        ctx,
        image_id,
        key,
        body,
        content_length=content_length,
        settings=settings,
        token=token,
        quotas=quotas,
    )
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
    # The verified copy in this node's image cache (spyglass.data.cache), read instead of the store.
    cached: Path | None = None

    @property
    def key(self) -> str:
        return self.location_key or str(self.record.blob_key)


def prepare_download(
    db: Database,
    store: StoreSet,
    ctx: RequestContext,
    image_id: str,
    range_header: str | None = None,
    cached: Callable[[ImageRecord], Path | None] | None = None,
) -> Download | None:
    """The data to send, or None when the image has none (the API answers 204, as Glance does).
    `cached` finds the image's data in this node's cache, which is then read without asking a store.

    Raises RangeNotSatisfiable when `range_header` selects no byte of the data."""
    with db.read() as conn:
        record = load_authorized(conn, ctx, image_id, Action.DOWNLOAD_IMAGE)
    deactivated = record.status == states.DEACTIVATED
    if deactivated and not permits(ctx, Action.DOWNLOAD_DEACTIVATED, target_of(record)):
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    deprecation.refuse_obsolete_download(ctx, record)
    if record.status not in (states.ACTIVE, states.DEACTIVATED) or not record.blob_key:
        return None
    size = record.size or 0  # set whenever the image has data
    part = byte_ranges.requested(range_header, size)
    path = cached(record) if cached is not None else None
    if path is not None:
        return Download(record, size, part, cached=path)
    found = first_available(store, record)
    if found is None:
        # Deleted a moment ago, or lost from every store: there is nothing to send.
        return None
    return Download(record, size, part, found[0], found[1])


def first_available(stores: StoreSet, record: ImageRecord) -> tuple[BlobStore, str] | None:
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
