"""Copies of an image's data in more stores: the `copy-image` import method, and the stores after
the first of an import to several stores.

Which stores an import targets is Glance's rule: `all_stores: true` means every configured store
(not with `stores` or the header); else the body's `stores`; else the `X-Image-Meta-Store` header
(not with `stores`); else the store the data was staged for; else the default store.

`copy-image` (the image's owner or an admin, on an active image) takes the import lock and lists
the stores in `os_glance_importing_to_stores`; a background task reads the data from its first
available location and writes it into each store in turn under a fresh blob key, adding one
location per store (spyglass.locations). A store that fails is recorded in
`os_glance_failed_import`; with `all_stores_must_succeed` (the default) the first failure stops
the copy and removes the copies this task made. The image stays active throughout.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import to_thread

from spyglass.blobs import BlobNotFound, BlobStore, copy_blob
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import import_state, tasks
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Invalid
from spyglass.images import locations, states
from spyglass.images.catalog import load_authorized, target_of
from spyglass.images.policy import Action, authorize
from spyglass.images.queries import ImageRecord, Location

COPY_IMAGE = "copy-image"

log = logging.getLogger(__name__)


def targets(body: dict[str, Any], header: str | None, stores: StoreSet, fallback: str) -> list[str]:
    """The stores an import writes to, checked against the configured ones."""
    named = body.get("stores")
    if body.get("all_stores", False):
        if named or header:
            raise Invalid(
                "All_stores parameter can't be used with x-image-meta-store header or stores parameter"
            )
        chosen = list(stores)
    elif named is not None:
        if header:
            raise Invalid("Stores parameter and x-image-meta-store header can't be both specified")
        if not isinstance(named, list) or not all(isinstance(s, str) for s in named) or not named:
            raise Invalid("'stores' must be a non-empty list of store identifiers.")
        chosen = list(dict.fromkeys(named))
    else:
        chosen = [header or fallback]
    for name in chosen:
        if name not in stores:
            raise Conflict(f"Unknown scheme '{name}' found in URI")
    return chosen


@dataclass(frozen=True)
class CopyJob:
    image_id: str
    task_id: str
    stores: tuple[str, ...]
    all_must_succeed: bool = True


def begin_copy(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    wanted: list[str],
    default: str,
    body: dict[str, Any],
    request_id: str | None = None,
) -> CopyJob | None:
    """Check a copy-image request, take the import lock and record the copy as an
    `api_image_import` task (blocking); None when every store asked for (all_stores) already
    holds the image."""
    must_succeed = bool(body.get("all_stores_must_succeed", True))
    all_stores = bool(body.get("all_stores", False))
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.GET_IMAGE, lock=True)
        if record.status != states.ACTIVE:
            raise Conflict(f"Image needs to be in 'active' state to use '{COPY_IMAGE}' method")
        # As Glance: the image's status first, then the copy_image rule (admins only by default).
        authorize(ctx, Action.COPY_IMAGE_TO_STORES, target_of(record), image_id=image_id)
        import_state.check_free(record)
        held = set(locations.store_names(record, default))
        new = [name for name in wanted if name not in held]
        if not all_stores and len(new) < len(wanted):
            present = next(name for name in wanted if name in held)
            raise Invalid(f"Image is already present at store '{present}'")
        if not new:
            # As Glance: all_stores skips the stores that hold the image; with none left the
            # request is accepted and there is nothing to do.
            return None
        task_id = str(uuid.uuid4())
        import_state.take(conn, record, task_id, new)
        task_input = {"image_id": image_id, "import_req": body, "backend": new}
        tasks.record(
            conn, ctx, task_id, tasks.API_IMAGE_IMPORT, task_input, image_id=image_id, request_id=request_id
        )
    return CopyJob(image_id, task_id, tuple(new), must_succeed)


async def run(job: CopyJob, db: Database, stores: StoreSet, new_key: Callable[[], str]) -> str | None:
    """Copy the data into each store of the job, then drop the import lock. The failure's message
    when a store failed and all_stores_must_succeed; else None."""
    made: list[Location] = []
    try:
        for name in job.stores:
            added = await _copy_one(job, db, stores, name, new_key())
            if added is None and job.all_must_succeed:
                await to_thread.run_sync(_undo, db, job, stores, made)
                return f"Copying the data of image {job.image_id} to store {name} failed."
            if added is not None:
                made.append(added)
    finally:
        with anyio.CancelScope(shield=True):
            await to_thread.run_sync(_unlock, db, job)
    return None


async def _copy_one(job: CopyJob, db: Database, stores: StoreSet, name: str, key: str) -> Location | None:
    target = stores[name]
    try:
        record = await to_thread.run_sync(_current, db, job)
        if record is None:
            return None
        await to_thread.run_sync(copy_data, stores, record, target, key)
        added = await to_thread.run_sync(_add, db, job, name, key)
    except Exception as exc:  # any store failure is this store's failure
        log.warning("copy-image %s of image %s to store %s failed: %s", job.task_id, job.image_id, name, exc)
        added = False
    if not added:
        await to_thread.run_sync(target.delete, key)
        await to_thread.run_sync(_ended, db, job, name, True)
        return None
    return Location(name, key)


def copy_data(stores: StoreSet, record: ImageRecord, target: BlobStore, key: str) -> None:
    """Write the image's data into `target` under `key`, read from its first location that answers."""
    for location in locations.of(record):
        source = locations.store_of(stores, location)
        if source is None:
            continue
        try:
            copy_blob(source, location.key, target, key)
            return
        except (BlobNotFound, OSError) as exc:
            log.warning("Image %s: cannot read %s from %r (%s)", record.id, location.key, location.store, exc)
    raise BlobNotFound(f"image {record.id} has no readable data")


def _current(db: Database, job: CopyJob) -> ImageRecord | None:
    with db.read() as conn:
        return import_state.held(conn, job.image_id, job.task_id, lock=False)


def _add(db: Database, job: CopyJob, name: str, key: str) -> bool:
    """Record the new location, if the image still is active and this task still holds its lock."""
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is None or record.status != states.ACTIVE:
            return False
        locations.add(conn, record, name, key)
        import_state.store_ended(conn, record, name, failed=False)
        return True


def _ended(db: Database, job: CopyJob, name: str, failed: bool) -> None:
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is not None:
            import_state.store_ended(conn, record, name, failed=failed)


def _undo(db: Database, job: CopyJob, stores: StoreSet, made: Sequence[Location]) -> None:
    """all_stores_must_succeed: a store failed, so the copies this task made go again."""
    unreferenced: list[Location] = []
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is None:
            return
        for location in made:
            gone = locations.remove(conn, record, location)
            if gone is not None:
                unreferenced.append(gone)
            record = import_state.held(conn, job.image_id, job.task_id)
            assert record is not None
    locations.delete_blobs(stores, unreferenced)


def _unlock(db: Database, job: CopyJob) -> None:
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is not None:
            import_state.release(conn, record, job.stores)
