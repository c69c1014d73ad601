"""Image data: streaming upload with hashing, and download.

Upload is `queued -> saving -> active`, each step a compare-and-set, with no database transaction
held while bytes flow. The bytes go straight into the blob store in large buffers; md5, the
multihash and the store write of each buffer run concurrently in worker threads while the next
buffer is received. Any failure (client gone, short body, size cap, store error, checksum the
client declared not matching) aborts the blob and puts the image back to `queued`.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from spyglass import states
from spyglass.blobs import BlobNotFound, BlobStore, BlobStoreFull
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.image_queries import ImageRecord
from spyglass.errors import Conflict, Forbidden, Invalid, TooLarge
from spyglass.images import load_authorized, set_status
from spyglass.policy import Action

BUFFER_SIZE = 4 * 1024 * 1024
# Formats whose virtual size is the file size.
FLAT_FORMATS = ("raw", "iso")


@dataclass(frozen=True)
class Digest:
    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str


class _Hashing:
    """md5 and the multihash over the same buffers, each in its own worker thread."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multi = hashlib.new(algorithm)
        self.size = 0

    async def feed(self, data: bytes, write: Callable[[bytes], None]) -> None:
        self.size += len(data)
        await asyncio.gather(
            run_in_threadpool(self.md5.update, data),
            run_in_threadpool(self.multi.update, data),
            run_in_threadpool(write, data),
        )

    def digest(self) -> Digest:
        return Digest(self.size, self.md5.hexdigest(), self.algorithm, self.multi.hexdigest())


def _begin_upload(db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.UPLOAD_IMAGE, lock=True)
        if record["status"] != states.QUEUED:
            raise Conflict(f"Image status transition from {record['status']} to saving is not allowed")
        if not set_status(conn, image_id, states.QUEUED, states.SAVING):
            raise Conflict("Another upload to this image is in progress.")
        return record


def _finish_upload(db: Database, record: ImageRecord, key: str, digest: Digest) -> bool:
    virtual = digest.size if record["disk_format"] in FLAT_FORMATS else None
    with db.write() as conn:
        return set_status(
            conn,
            record.id,
            states.SAVING,
            states.ACTIVE,
            size=digest.size,
            virtual_size=virtual,
            checksum=digest.checksum,
            os_hash_algo=digest.os_hash_algo,
            os_hash_value=digest.os_hash_value,
            blob_key=key,
        )


def _return_to_queued(db: Database, image_id: str) -> None:
    with db.write() as conn:
        set_status(conn, image_id, states.SAVING, states.QUEUED)


def _check_declared(record: ImageRecord, digest: Digest) -> None:
    declared = record.properties.get("owner_specified.openstack.md5")
    if declared and declared.lower() != digest.checksum:
        raise Invalid(
            f"The uploaded data has md5 {digest.checksum}, but the image declares "
            f"owner_specified.openstack.md5={declared}; the upload was discarded."
        )


async def upload(
    db: Database,
    store: BlobStore,
    ctx: RequestContext,
    image_id: str,
    body: AsyncIterator[bytes],
    *,
    content_length: int | None,
    size_cap: int,
    algorithm: str,
) -> None:
    record = await run_in_threadpool(_begin_upload, db, ctx, image_id)
    # A fresh key per attempt: a late writer of a deleted image never touches a newer image's data.
    key = f"{image_id}-{secrets.token_hex(8)}"
    try:
        if content_length is not None and content_length > size_cap:
            raise TooLarge(f"Image exceeds the storage quota: {content_length} bytes > {size_cap} bytes.")
        digest = await _receive(store, key, body, record, content_length, size_cap, algorithm)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_return_to_queued, db, image_id)
        raise
    if not await run_in_threadpool(_finish_upload, db, record, key, digest):
        # The image was deleted (or its status changed) while the bytes were flowing.
        await run_in_threadpool(store.delete, key)
        raise Conflict(f"Image {image_id} was deleted or changed during the upload.")


async def _receive(
    store: BlobStore,
    key: str,
    body: AsyncIterator[bytes],
    record: ImageRecord,
    content_length: int | None,
    size_cap: int,
    algorithm: str,
) -> Digest:
    """Stream the body into a new blob and commit it once every check passed; abort it otherwise."""
    writer = await run_in_threadpool(store.writer, key)
    try:
        digest = await _stream(body, writer.write, size_cap, algorithm)
        if content_length is not None and digest.size != content_length:
            raise Invalid(f"Received {digest.size} bytes but Content-Length announced {content_length}.")
        _check_declared(record, digest)
        await run_in_threadpool(writer.commit)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(writer.abort)
        if isinstance(exc, BlobStoreFull):
            raise TooLarge("Image storage media is full.") from exc
        raise
    return digest


async def _stream(
    body: AsyncIterator[bytes], write: Callable[[bytes], None], size_cap: int, algorithm: str
) -> Digest:
    hashing = _Hashing(algorithm)
    pending: Awaitable[Any] | None = None
    buffer = bytearray()
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > size_cap:
                raise TooLarge(f"Image exceeds the storage quota of {size_cap} bytes.")
            buffer += chunk
            if len(buffer) >= BUFFER_SIZE:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(hashing.feed(bytes(buffer), write))
                buffer.clear()
        if pending is not None:
            await pending
    except BaseException:
        # Never leave a write running into a blob that the caller is about to abort.
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        raise
    if buffer:
        await hashing.feed(bytes(buffer), write)
    return hashing.digest()


@dataclass(frozen=True)
class Download:
    record: ImageRecord
    size: int


def prepare_download(db: Database, store: BlobStore, ctx: RequestContext, image_id: str) -> Download | None:
    """The image to send, or None when it has no data (the API answers 204, as Glance does)."""
    with db.read() as conn:
        record = load_authorized(conn, ctx, image_id, Action.DOWNLOAD_IMAGE)
    if record["status"] == states.DEACTIVATED and not ctx.is_admin:
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    if record["status"] not in (states.ACTIVE, states.DEACTIVATED) or not record["blob_key"]:
        return None
    if not _blob_exists(store, record["blob_key"]):
        # Deleted a moment ago, or lost from the store: there is nothing to send.
        return None
    return Download(record, int(record["size"]))


def _blob_exists(store: BlobStore, key: str) -> bool:
    try:
        store.size(key)
    except BlobNotFound:
        return False
    return True
