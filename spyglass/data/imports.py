"""Interoperable image import: stage then glance-direct, or web-download.

glance-direct: `PUT /stage` moves a queued image to `uploading` and streams the data into the
staging area (data_dir/staging/<image id>), hashed and inspected on the way exactly as an upload
is (spyglass.ingest); the image then shows the size and digests of the staged data. `POST /import`
moves it to `importing`, and a background task copies the staged data into the blob store and
activates the image. web-download: `POST /import` moves a queued image to `importing`, and a
background task fetches the URL (spyglass.web_download) straight into the blob store, hashed and
inspected on the way. Either way a refusal or a failure returns the image to `queued` without data.
A signed image (spyglass.data.signatures) is verified by its import, as Glance verifies it:
web-download in its one pass over the data, glance-direct by reading the staged data once more
before it goes into the store (staging does not verify: the properties may change until the import).

The bookkeeping properties are Glance's `os_glance_*` (spyglass.data.import_state: the import lock,
the stores importing, the stores failed). Glance's `os_glance_stage_host` is not used: every API
worker shares the staging area, so no request needs to be proxied to the worker that staged the data.

Imports run as asyncio tasks of the server process. A server that stops or crashes loses them:
start-up recovery (spyglass.data.recovery) puts such images back to `queued` and empties staging.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import anyio
from anyio import to_thread
from sqlalchemy import Connection

from spyglass.blobs import BlobStore, FilesystemStore, copy_blob
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import import_state, ingest, signatures, store_copies, tasks, transfer, web_download
from spyglass.data import queries as dq
from spyglass.data.transfer import new_blob_key
from spyglass.db.engine import Database
from spyglass.egress import AddressPolicy, OutboundError
from spyglass.errors import Conflict, Invalid
from spyglass.images import blob_refs, notify, states
from spyglass.images import quotas as quota
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action
from spyglass.images.queries import ImageRecord, set_status
from spyglass.images.quotas import ENFORCED, Quotas
from spyglass.settings import Settings

GLANCE_DIRECT = "glance-direct"
WEB_DOWNLOAD = "web-download"
IMPORT_METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, store_copies.COPY_IMAGE)

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
    quotas: Quotas = ENFORCED,
) -> None:
    """Stage the data; `store_name` (X-Image-Meta-Store) is the store the import will write to."""
    staging_in = transfer.Receiving(
        states.UPLOADING,
        staging,
        partial(_staged, store_name),
        quota.IMAGE_STAGE_TOTAL,
        requeue={"store": None, **dq.NO_DATA},
        # The import verifies a signed image (its properties may still change until then).
        verify_signature=False,
    )
    # The staged data's key is the image id: the import finds it there.
    await transfer.receive(
        staging_in,
        db,
        ctx,
        image_id,
        image_id,
        body,
        content_length=content_length,
        settings=settings,
        quotas=quotas,
    )


def _staged(store_name: str | None, conn: Connection, image_id: str, key: str, digest: ingest.Digest) -> bool:
    """Record what was staged; False when the image is no longer the one being staged."""
    return dq.record_staged(conn, image_id, store_name, digest.columns())


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
    # Who asked: a key manager may hold a signed image's certificate for them.
    project_id: str | None = None
    token: str | None = None
    quotas: Quotas = ENFORCED


def begin_import(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    body: Any,
    settings: Settings,
    stores: StoreSet,
    header: str | None = None,
    *,
    request_id: str | None = None,
    task_id: str | None = None,
    token: str | None = None,
    quotas: Quotas = ENFORCED,
) -> ImportJob:
    """Check the request, take the import lock and move the image to `importing` (blocking).

    The import is recorded as a new `api_image_import` task (spyglass.data.tasks), unless it runs
    for the task `task_id` of the tasks API, which records itself."""
    request = ImportRequest.parse(body)
    with db.read() as conn:
        found = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE)
        targets = store_copies.targets(body, header, stores, found.store or settings.default_store_name)
        _check_importable(found, request.method)
    if request.method == WEB_DOWNLOAD:
        web_download.check_target(request.uri, AddressPolicy.of(settings))
    new_task = task_id is None
    task_id = task_id or str(uuid.uuid4())
    quotas.read_ahead(found.owner)
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE, lock=True)
        _check_importable(record, request.method)
        _claim_import(conn, quotas, record, request.method)
        if not set_status(conn, image_id, record.status, states.IMPORTING):
            raise Conflict("The image status changed during the request; try again.")
        import_state.take(conn, record, task_id, targets)
        if new_task:
            task_input = {"image_id": image_id, "import_req": body, "backend": targets}
            kind = tasks.API_IMAGE_IMPORT
            tasks.record(conn, ctx, task_id, kind, task_input, image_id=image_id, request_id=request_id)
    must_succeed = body.get("all_stores_must_succeed", True)
    return ImportJob(
        image_id,
        task_id,
        request.method,
        request.uri,
        record,
        tuple(targets),
        must_succeed,
        project_id=ctx.project_id,
        token=token,
        quotas=quotas,
    )


def _claim_import(conn: Connection, quotas: Quotas, record: ImageRecord, method: str) -> None:
    """A web-download is one more transfer in flight, of a size known at its end; staged data is
    counted among the uploads already, and its size is held in the store's quota until imported."""
    if method == WEB_DOWNLOAD:
        quota.claim(conn, quotas, record.owner, {quota.IMAGE_COUNT_UPLOADING: 1, quota.IMAGE_SIZE_TOTAL: 0})
    else:
        quota.reserve(conn, quotas, record.owner, record.id, quota.IMAGE_SIZE_TOTAL, record.size or 0)


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
    import_state.check_free(record)


# ---- the import task -----------------------------------------------------------------------------------


def start(job: ImportJob, db: Database, stores: StoreSet, staging: BlobStore, settings: Settings) -> None:
    """Run the import in the background, in this server process, as its task."""
    work = partial(run_import, job, db, stores, staging, settings)
    ttl = tasks.time_to_live(settings)
    _spawn(_as_task(db, job.task_id, job.image_id, work, ttl), f"import-{job.task_id}")


def start_copy(job: store_copies.CopyJob, db: Database, stores: StoreSet, settings: Settings) -> None:
    """Run a copy-image import in the background, in this server process, as its task."""
    work = partial(store_copies.run, job, db, stores, new_blob_key)
    ttl = tasks.time_to_live(settings)
    _spawn(_as_task(db, job.task_id, job.image_id, work, ttl), f"copy-image-{job.task_id}")


async def _as_task(
    db: Database, task_id: str, image_id: str, work: Callable[[], Awaitable[str | None]], ttl: timedelta
) -> None:
    """Run an import as its task: `processing` while it runs, then `success` or `failure`."""
    failure: str | None = tasks.INTERRUPTED
    try:
        await to_thread.run_sync(tasks.begin_processing, db, task_id)
        failure = await work()
    finally:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(tasks.end, db, task_id, failure, {"image_id": image_id}, ttl)


def _spawn(work: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.get_running_loop().create_task(work, name=name)
    _running.add(task)
    task.add_done_callback(_running.discard)


async def run_import(
    job: ImportJob, db: Database, stores: StoreSet, staging: BlobStore, settings: Settings
) -> str | None:
    """Import into the first store, then copy into the others as copy-image does. The failure's
    message, or None when the import succeeded."""
    failure = await _run(job, db, stores[job.stores[0]], staging, settings)
    if failure is None and len(job.stores) > 1:
        copy = store_copies.CopyJob(job.image_id, job.task_id, job.stores[1:], job.all_must_succeed)
        failure = await store_copies.run(copy, db, stores, new_blob_key)
    return failure


async def _run(
    job: ImportJob, db: Database, store: BlobStore, staging: BlobStore, settings: Settings
) -> str | None:
    """Import into `store`; None when the image is active with the data there, else why not."""
    key = new_blob_key()
    try:
        columns = await _bring_data(job, db, store, staging, key, settings)
        finished = await to_thread.run_sync(_finish_import, db, job, key, columns, store.name)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(_fail_import, db, job, store.name)
            await to_thread.run_sync(store.delete, key)
        if not isinstance(exc, Exception):
            raise
        log.warning("Import %s of image %s (%s) failed: %s", job.task_id, job.image_id, job.method, exc)
        return str(exc) or type(exc).__name__
    finally:
        if job.method == GLANCE_DIRECT:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(staging.delete, job.image_id)
    if not finished:
        # The image was deleted, or its import taken over, while the data was on its way.
        await to_thread.run_sync(store.delete, key)
        return "The image was deleted, or its import taken over, while the data was on its way."
    # Count the blob's references (copies share it), or swap it for an identical blob already stored.
    await to_thread.run_sync(blob_refs.adopt, db, store, job.image_id, key)
    return None


async def _bring_data(
    job: ImportJob, db: Database, store: BlobStore, staging: BlobStore, key: str, settings: Settings
) -> dict[str, Any]:
    """Put the data into the store under `key`; the image columns it sets."""
    check = await to_thread.run_sync(
        transfer.signature_check, job.record, settings, job.project_id, job.token
    )
    if job.method == GLANCE_DIRECT:
        # Hashed and inspected when it was staged: the image already holds its digests. A signed
        # image's staged data is read once more, for its signature, before it goes into the store.
        if check is not None:
            await to_thread.run_sync(_verify_staged, staging, job.image_id, check)
        await to_thread.run_sync(copy_blob, staging, job.image_id, store, key)
        return {}
    assert job.uri is not None
    policy = AddressPolicy.of(settings)
    limit = settings.web_download_timeout_seconds
    try:
        with anyio.fail_after(limit):
            async with web_download.fetch(job.uri, policy) as fetched:
                expect = ingest.Expectations.of(job.record, settings, fetched.content_length, check)
                grow = partial(
                    quota.extend, db, job.quotas, job.record.owner, job.image_id, quota.IMAGE_SIZE_TOTAL
                )
                body = transfer.metered(fetched.body, 0, grow) if job.quotas.enabled else fetched.body
                digest = await ingest.receive(store, key, body, expect)
    except TimeoutError as exc:
        raise OutboundError(f"The download took longer than {limit} seconds.") from exc
    return digest.columns()


def _verify_staged(staging: BlobStore, image_id: str, check: signatures.SignatureCheck) -> None:
    hasher = check.hasher()
    for chunk in staging.read(image_id):
        hasher.update(chunk)
    check.verify(hasher)


def _finish_import(db: Database, job: ImportJob, key: str, columns: dict[str, Any], store_name: str) -> bool:
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is None:
            return False
        size = columns.get("size", record.size) or 0
        quota.settle(conn, job.quotas, job.image_id, quota.IMAGE_SIZE_TOTAL, size)
        if not set_status(
            conn, job.image_id, states.IMPORTING, states.ACTIVE, blob_key=key, store=store_name, **columns
        ):
            return False
        import_state.first_part_ended(conn, record, store_name, job.stores[1:], failed=False)
        notify.data_received(conn, job.image_id, store_name, activated=True)
        return True


def _fail_import(db: Database, job: ImportJob, store_name: str) -> None:
    with db.write() as conn:
        quota.release(conn, job.image_id)
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is None or not set_status(
            conn, job.image_id, states.IMPORTING, states.QUEUED, blob_key=None, store=None, **dq.NO_DATA
        ):
            return
        import_state.first_part_ended(conn, record, store_name, job.stores[1:], failed=True)
