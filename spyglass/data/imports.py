"""Interoperable image import: stage then glance-direct, or web-download.

glance-direct: `PUT /stage` moves a queued image to `uploading` and streams the data into the
staging area (data_dir/staging/<image id>), hashed and inspected on the way exactly as an upload
is (spyglass.ingest); the image then shows the size and digests of the staged data. `POST /import`
moves it to `importing`, and a background task copies the staged data into the blob store and
activates the image. web-download: `POST /import` moves a queued image to `importing`, and a
background task fetches the URL (spyglass.web_download) straight into the blob store, hashed and
inspected on the way. Either way a refusal or a failure returns the image to `queued` without data.

The bookkeeping properties are Glance's: while an import runs, `os_glance_import_task` holds its
task id (the import lock) and `os_glance_importing_to_stores` the store it imports to; when it ends
the lock goes and the store leaves `os_glance_importing_to_stores`; a failed import records the
store in `os_glance_failed_import`. Glance's `os_glance_stage_host` is not used: every API worker
shares the staging area, so no request needs to be proxied to the worker that staged the data.

Imports run as asyncio tasks of the server process. A server that stops or crashes loses them:
start-up recovery (spyglass.maintenance) puts such images back to `queued` and empties staging.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import to_thread
from sqlalchemy import Connection, update

from spyglass.blobs import BlobStore, FilesystemStore, copy_blob
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import ingest, store_copies, web_download
from spyglass.data.transfer import new_blob_key
from spyglass.db.engine import Database
from spyglass.db.tables import images
from spyglass.egress import AddressPolicy, OutboundError
from spyglass.errors import Conflict, Invalid
from spyglass.images import blob_refs, states
from spyglass.images import queries as q
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action
from spyglass.images.queries import ImageRecord, set_status
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

GLANCE_DIRECT = "glance-direct"
WEB_DOWNLOAD = "web-download"
IMPORT_METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, store_copies.COPY_IMAGE)
LOCK = "os_glance_import_task"
IMPORTING_TO = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"
NO_DATA: dict[str, Any] = dict.fromkeys(("size", "checksum", "os_hash_algo", "os_hash_value", "virtual_size"))

log = logging.getLogger(__name__)
# Strong references to the running imports (the event loop keeps only weak ones).
_running: set[asyncio.Task[None]] = set()


def staging_store(settings: Settings) -> FilesystemStore:
    return FilesystemStore(settings.staging_dir, name="staging")


# ---- stage -----------------------------------------------------------------------------------------


async def stage(
    db: Database,
    staging: BlobStore,
    ctx: RequestContext,
    image_id: str,
    body: AsyncIterator[bytes],
    *,
    content_length: int | None,
    settings: Settings,
    store_name: str | None = None,
) -> None:
    """Stage the data; `store_name` (X-Image-Meta-Store) is the store the import will write to."""
    record = await to_thread.run_sync(_begin_stage, db, ctx, image_id)
    try:
        expect = ingest.Expectations.of(record, settings, content_length)
        digest = await ingest.receive(staging, image_id, body, expect)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(_unstage, db, image_id)
        raise
    if not await to_thread.run_sync(_staged, db, image_id, digest, store_name):
        await to_thread.run_sync(staging.delete, image_id)
        raise Conflict(f"Image {image_id} was deleted or changed during the upload.")


def _begin_stage(db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.UPLOAD_IMAGE, lock=True)
        status = record.status
        if status != states.QUEUED:
            raise Conflict(f"Image status transition from {status} to {states.UPLOADING} is not allowed")
        if not set_status(conn, image_id, states.QUEUED, states.UPLOADING):
            raise Conflict("Another upload to this image is in progress.")
        return record


def _staged(db: Database, image_id: str, digest: ingest.Digest, store_name: str | None) -> bool:
    """Record what was staged; False when the image is no longer the one being staged."""
    with db.write() as conn:
        result = conn.execute(
            update(images)
            .where(images.c.id == image_id, images.c.status == states.UPLOADING, images.c.size.is_(None))
            .values(updated_at=utcnow(), store=store_name, **digest.columns())
        )
        return result.rowcount == 1


def _unstage(db: Database, image_id: str) -> None:
    with db.write() as conn:
        set_status(conn, image_id, states.UPLOADING, states.QUEUED, store=None, **NO_DATA)


# ---- the import call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRequest:
    method: str
    uri: str | None = None

    @classmethod
    def parse(cls, body: Any) -> ImportRequest:
        """The body of `POST /import`, checked with Glance's messages."""
        method = body.get("method") if isinstance(body, dict) else None
        if not isinstance(method, dict):
            raise Invalid("Import request requires a 'method' field.")
        name = method.get("name")
        if not isinstance(name, str):
            raise Invalid("Import request requires a 'name' field.")
        if name not in IMPORT_METHODS:
            raise Invalid(f"Unknown import method name '{name}'.")
        for flag in ("all_stores_must_succeed", "all_stores"):
            if not isinstance(body.get(flag, True), bool):
                raise Invalid(f"'{flag}' must be boolean value only")
        uri = method.get("uri")
        return cls(name, uri if isinstance(uri, str) else None)


@dataclass(frozen=True)
class ImportJob:
    image_id: str
    task_id: str
    method: str
    uri: str | None
    # The image as the import found it: its disk_format and declared digests bind the data.
    record: ImageRecord
    # The stores to write to, the first one first (spyglass.store_copies copies to the others).
    stores: tuple[str, ...] = ()
    all_must_succeed: bool = True


def begin_import(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    body: Any,
    settings: Settings,
    stores: StoreSet,
    header: str | None = None,
) -> ImportJob:
    """Check the request, take the import lock and move the image to `importing` (blocking)."""
    request = ImportRequest.parse(body)
    with db.read() as conn:
        found = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE)
        targets = store_copies.targets(body, header, stores, found.store or settings.default_store_name)
        _check_importable(found, request.method)
    if request.method == WEB_DOWNLOAD:
        web_download.check_target(request.uri, AddressPolicy.of(settings))
    task_id = str(uuid.uuid4())
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE, lock=True)
        _check_importable(record, request.method)
        if not set_status(conn, image_id, record.status, states.IMPORTING):
            raise Conflict("The image status changed during the request; try again.")
        q.replace_properties(
            conn, image_id, record.properties, store_copies.starting(record.properties, task_id, targets)
        )
    must_succeed = body.get("all_stores_must_succeed", True)
    return ImportJob(image_id, task_id, request.method, request.uri, record, tuple(targets), must_succeed)


def _check_importable(record: ImageRecord, method: str) -> None:
    status = record.status
    if status == states.ACTIVE:
        raise Conflict("Image with status active cannot be target for import")
    if method == WEB_DOWNLOAD and status != states.QUEUED:
        raise Conflict(f"Image needs to be in 'queued' state to use '{method}' method")
    if method == GLANCE_DIRECT and (status != states.UPLOADING or record.size is None):
        raise Conflict(f"Image needs to be staged before '{method}' method can be used")
    for name in ("container_format", "disk_format"):
        if not getattr(record, name):
            raise Conflict(f"'{name}' needs to be set before import")
    if LOCK in record.properties:
        raise Conflict(
            f"New operation on image '{record.id}' is not permitted as prior operation is still in progress"
        )


# ---- the import task -----------------------------------------------------------------------------------


def start(job: ImportJob, db: Database, stores: StoreSet, staging: BlobStore, settings: Settings) -> None:
    """Run the import in the background, in this server process."""
    _spawn(_run_all(job, db, stores, staging, settings), f"import-{job.task_id}")


def start_copy(job: store_copies.CopyJob, db: Database, stores: StoreSet) -> None:
    """Run a copy-image import in the background, in this server process."""
    _spawn(store_copies.run(job, db, stores, new_blob_key), f"copy-image-{job.task_id}")


async def _run_all(
    job: ImportJob, db: Database, stores: StoreSet, staging: BlobStore, settings: Settings
) -> None:
    """Import into the first store; then copy into the others, as copy-image does."""
    if await _run(job, db, stores[job.stores[0]], staging, settings) and len(job.stores) > 1:
        copy = store_copies.CopyJob(job.image_id, job.task_id, job.stores[1:], job.all_must_succeed)
        await store_copies.run(copy, db, stores, new_blob_key)


def _spawn(work: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.get_running_loop().create_task(work, name=name)
    _running.add(task)
    task.add_done_callback(_running.discard)


async def _run(
    job: ImportJob, db: Database, store: BlobStore, staging: BlobStore, settings: Settings
) -> bool:
    """Import into `store`; True when the image is active with the data there."""
    key = new_blob_key()
    try:
        columns = await _bring_data(job, store, staging, key, settings)
        finished = await to_thread.run_sync(_finish_import, db, job, key, columns, store.name)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(_fail_import, db, job, store.name)
            await to_thread.run_sync(store.delete, key)
        if not isinstance(exc, Exception):
            raise
        log.warning("Import %s of image %s (%s) failed: %s", job.task_id, job.image_id, job.method, exc)
        return False
    finally:
        if job.method == GLANCE_DIRECT:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(staging.delete, job.image_id)
    if not finished:
        # The image was deleted, or its import taken over, while the data was on its way.
        await to_thread.run_sync(store.delete, key)
    if finished:
        # Count the blob's references (copies share it), or swap it for an identical blob already stored.
        await to_thread.run_sync(blob_refs.adopt, db, store, job.image_id, key)
    return finished


async def _bring_data(
    job: ImportJob, store: BlobStore, staging: BlobStore, key: str, settings: Settings
) -> dict[str, Any]:
    """Put the data into the store under `key`; the image columns it sets."""
    if job.method == GLANCE_DIRECT:
        # Hashed and inspected when it was staged: the image already holds its digests.
        await to_thread.run_sync(copy_blob, staging, job.image_id, store, key)
        return {}
    assert job.uri is not None
    policy = AddressPolicy.of(settings)
    limit = settings.web_download_timeout_seconds
    try:
        with anyio.fail_after(limit):
            async with web_download.fetch(job.uri, policy) as fetched:
                expect = ingest.Expectations.of(job.record, settings, fetched.content_length)
                digest = await ingest.receive(store, key, fetched.body, expect)
    except TimeoutError as exc:
        raise OutboundError(f"The download took longer than {limit} seconds.") from exc
    return digest.columns()


def _locked(conn: Connection, job: ImportJob) -> ImageRecord | None:
    """The image, if this import still holds its lock."""
    record = q.fetch_image(conn, job.image_id, None, lock=True)
    if record is None or record.properties.get(LOCK) != job.task_id:
        return None
    return record


def _finish_import(db: Database, job: ImportJob, key: str, columns: dict[str, Any], store_name: str) -> bool:
    with db.write() as conn:
        record = _locked(conn, job)
        if record is None or not set_status(
            conn, job.image_id, states.IMPORTING, states.ACTIVE, blob_key=key, store=store_name, **columns
        ):
            return False
        after = ended(record.properties, store_name, False)
        if len(job.stores) > 1:
            # The import goes on into the other stores: it keeps its lock until they are done.
            after[LOCK] = job.task_id
        q.replace_properties(conn, job.image_id, record.properties, after)
        return True


def _fail_import(db: Database, job: ImportJob, store_name: str) -> None:
    with db.write() as conn:
        record = _locked(conn, job)
        if record is None or not set_status(
            conn, job.image_id, states.IMPORTING, states.QUEUED, blob_key=None, store=None, **NO_DATA
        ):
            return
        after = ended(record.properties, store_name, True)
        # The other stores will not be written either.
        for other in job.stores[1:]:
            after = ended(after, other, True)
        q.replace_properties(conn, job.image_id, record.properties, after)


def started(properties: dict[str, str], task_id: str, store_name: str) -> dict[str, str]:
    """The properties while an import to `store_name` runs: its lock, the store importing."""
    after = {**properties, LOCK: task_id}
    after[IMPORTING_TO] = _store_list(properties.get(IMPORTING_TO, ""), add=store_name)
    after[FAILED] = _store_list(properties.get(FAILED, ""), remove=store_name)
    return after


def ended(properties: dict[str, str], store_name: str, failed: bool) -> dict[str, str]:
    """The properties once the import to `store_name` has ended: no lock, the store no longer
    importing, and the store among the failed ones if it failed."""
    after = {k: v for k, v in properties.items() if k != LOCK}
    after[IMPORTING_TO] = _store_list(properties.get(IMPORTING_TO, ""), remove=store_name)
    failed_stores = properties.get(FAILED, "")
    after[FAILED] = _store_list(failed_stores, add=store_name) if failed else failed_stores
    return after


def _store_list(stores: str, *, add: str = "", remove: str = "") -> str:
    names = ({s for s in stores.split(",") if s} | {add}) - {remove, ""}
    return ",".join(sorted(names))
