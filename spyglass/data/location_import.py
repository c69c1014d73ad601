"""The locations API of Images v2.17, for the services that call the image service.

`GET /v2/images/{id}/locations` tells a service (Cinder, Nova) where an image's data is, so it can
clone it in place; `POST` gives a queued image its data by pointing it at a blob the service put
in one of the configured stores (Glance's `location_import` task). Both are for callers with the
`service` role (spyglass.images.policy); anyone else gets Glance's 403, and Nova and Cinder then
fall back to uploading or downloading the data through the API.

A new location must name a blob of a configured store, in the URL form GET answers
(spyglass.blobs.registry); Glance also lets normal users add `http` locations, which Spyglass,
having no http store, never accepts. With `do_secure_hash` (the default) the data at the location
is read in the background for its checksum and os_hash_value: when the caller gave
`validation_data`, the image is `importing` until the hash is known and becomes `active` only if
it matches (else it goes back to `queued` without the location); without, the image is `active`
at once and its hashes appear when the reading ends. The import lock (`os_glance_import_task`) is
held meanwhile, so no import or second location races it. A server that stops while reading puts
a still-importing image back to `queued` at start-up (spyglass.data.recovery); an active one keeps
its location, without hashes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection

from spyglass.blobs import BlobNotFound
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import import_state
from spyglass.data import queries as dq
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, Invalid, NotFound
from spyglass.images import blob_refs, locations, states
from spyglass.images import queries as q
from spyglass.images.catalog import is_uuid, load_authorized, target_of
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.images.queries import ImageRecord
from spyglass.images.visibility import can_show
from spyglass.settings import Settings

__all__ = ["LocationJob", "NewLocation", "add", "hash_location", "locations_of", "start"]

log = logging.getLogger(__name__)
# The algorithms the location schema of Glance 33 allows in validation_data.
HASH_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
# Strong references to the running hash readers (the event loop keeps only weak ones).
_running: set[asyncio.Task[None]] = set()


def locations_of(db: Database, stores: StoreSet, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
    """Every location of the image's data, first one first, as Glance lists them."""
    with db.read() as conn:
        record = load_authorized(conn, ctx, image_id, Action.FETCH_IMAGE_LOCATION)
    found = []
    for location in locations.of(record):
        store = location.store or stores.default_name
        found.append({"url": stores.url(store, location.key), "metadata": {"store": store}})
    return found


# ---- adding a location -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewLocation:
    """The body of `POST /locations`: the URL and the hash the caller vouches for, if any."""

    url: str
    os_hash_algo: str | None = None
    os_hash_value: str | None = None

    @classmethod
    def parse(cls, body: Any) -> NewLocation:
        if not isinstance(body, dict):
            raise Invalid(_schema_error("the body is not an object"))
        url = body.get("url")
        if not isinstance(url, str):
            raise Invalid(
                _schema_error("'url' is a required property" if url is None else "'url' is not a string")
            )
        given = body.get("validation_data", {})
        if not isinstance(given, dict):
            raise Invalid(_schema_error("'validation_data' is not an object"))
        unexpected = sorted(set(given) - {"os_hash_algo", "os_hash_value"})
        if unexpected:
            raise Invalid(_schema_error(f"Additional properties are not allowed ({', '.join(unexpected)})"))
        algo, value = given.get("os_hash_algo"), given.get("os_hash_value")
        if algo is not None and algo not in HASH_ALGORITHMS:
            raise Invalid(_schema_error(f"{algo!r} is not one of {list(HASH_ALGORITHMS)}"))
        if value is not None and (not isinstance(value, str) or len(value) > 128):
            raise Invalid(_schema_error("'os_hash_value' is not a string of at most 128 characters"))
        if (algo is None) != (value is None):
            raise Invalid(_schema_error("os_hash_algo and os_hash_value are given together or not at all"))
        return cls(url, algo, value)

    def check_hash(self) -> None:
        """Glance's checks of the vouched hash, before anything is read (400)."""
        if self.os_hash_value is None or self.os_hash_algo is None:
            return
        try:
            digest = bytes.fromhex(self.os_hash_value)
        except ValueError:
            raise Invalid(f"os_hash_value ({self.os_hash_value}) is not a valid hexadecimal value") from None
        want = hashlib.new(self.os_hash_algo).digest_size
        if len(digest) != want:
            raise Invalid(
                f"os_hash_value: ({self.os_hash_value}) is not the correct size for "
                f"({self.os_hash_algo}) (should be ({want}) bytes)"
            )


def _schema_error(reason: str) -> str:
    return f"Provided object does not match schema 'location': {reason}"


@dataclass(frozen=True)
class LocationJob:
    """The background reading of a new location's data."""

    image_id: str
    task_id: str
    store: str
    key: str
    os_hash_algo: str
    # The vouched hash: the image stays `importing` until it is checked. None: it is already active.
    expected: str | None


def add(
    db: Database, stores: StoreSet, ctx: RequestContext, image_id: str, body: Any, settings: Settings
) -> LocationJob | None:
    """Check the request and point the queued image at the location (blocking). Returns the
    reading to start in the background, if any."""
    new = NewLocation.parse(body)
    with db.read() as conn:
        _check(conn, ctx, image_id, new)
    found = stores.locate(new.url)
    if found is None:
        raise Invalid(f"Invalid location: {new.url} is not in any store of this image service.")
    store_name, key = found
    try:
        size = stores[store_name].size(key)
    except BlobNotFound:
        raise Invalid(f"Invalid location: there is no data at {new.url}.") from None
    with db.write() as conn:
        record = _check(conn, ctx, image_id, new, lock=True)
        job = _point_at(conn, record, new, store_name, key, size, settings)
    log.info("Image %s: location %s added by user %s", image_id, new.url, ctx.user_id)
    return job


def _check(
    conn: Connection, ctx: RequestContext, image_id: str, new: NewLocation, *, lock: bool = False
) -> ImageRecord:
    """Glance's order: the image (404), its status (409), the caller (403), the hash (400), the lock (409)."""
    record = q.fetch_image(conn, image_id, ctx.project_id, lock=lock) if is_uuid(image_id) else None
    if record is None or not _can_see(ctx, target_of(record)):
        raise NotFound(f"No image found with ID {image_id}")
    target = target_of(record)
    if record.status != states.QUEUED:
        raise Conflict(f"It's not allowed to add locations if image status is {record.status}.")
    authorize(ctx, Action.ADD_IMAGE_LOCATION, target, image_id=image_id)
    if not permits(ctx, Action.ADD_STORE_LOCATION, target):
        raise Forbidden("http store must be enabled to use location API by normal user.")
    new.check_hash()
    import_state.check_free(record)
    return record


def _can_see(ctx: RequestContext, t: Target) -> bool:
    return can_show(ctx, t.visibility, t.owner, t.member_status, t.owner_suspended, t.recycled)


def _point_at(
    conn: Connection,
    record: ImageRecord,
    new: NewLocation,
    store: str,
    key: str,
    size: int,
    settings: Settings,
) -> LocationJob | None:
    """The image's data is now at (store, key); its status and hashes as do_secure_hash says."""
    columns: dict[str, Any] = {"store": store, "blob_key": key, "size": size}
    job = None
    if settings.do_secure_hash:
        task_id = str(uuid.uuid4())
        algo = new.os_hash_algo or settings.hashing_algorithm
        job = LocationJob(record.id, task_id, store, key, algo, new.os_hash_value)
        columns["os_hash_algo"] = algo
        q.replace_properties(
            conn, record.id, record.properties, {**record.properties, import_state.LOCK: task_id}
        )
    elif new.os_hash_value is not None:
        columns.update(os_hash_algo=new.os_hash_algo, os_hash_value=new.os_hash_value)
    target = states.IMPORTING if job is not None and job.expected is not None else states.ACTIVE
    if not q.set_status(conn, record.id, states.QUEUED, target, **columns):
        raise Conflict("The image status changed during the request; try again.")
    blob_refs.retain(conn, key, store, replace(record, **columns))
    return job


# ---- the background reading ----------------------------------------------------------------------------


def start(job: LocationJob, db: Database, stores: StoreSet) -> None:
    """Read the location's data for its hashes, in the background, in this server process."""
    task = asyncio.get_running_loop().create_task(
        to_thread.run_sync(hash_location, job, db, stores), name=f"location-import-{job.task_id}"
    )
    _running.add(task)
    task.add_done_callback(_running.discard)


def hash_location(job: LocationJob, db: Database, stores: StoreSet) -> None:
    checksum = hashlib.md5(usedforsecurity=False)
    multihash = hashlib.new(job.os_hash_algo)
    try:
        for chunk in stores[job.store].read(job.key):
            checksum.update(chunk)
            multihash.update(chunk)
    except (BlobNotFound, OSError) as exc:
        log.warning("Image %s: hashing the data at its new location failed: %s", job.image_id, exc)
        _give_up(db, stores, job)
        return
    _finish(db, stores, job, checksum.hexdigest(), multihash.hexdigest())


def _finish(db: Database, stores: StoreSet, job: LocationJob, checksum: str, os_hash_value: str) -> None:
    if job.expected is not None and job.expected != os_hash_value:
        log.warning(
            "Image %s: os_hash_value: (%s) not matched with actual os_hash_value: (%s)",
            job.image_id,
            job.expected,
            os_hash_value,
        )
        _give_up(db, stores, job)
        return
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is None:
            return  # Deleted meanwhile.
        hashes = {"checksum": checksum, "os_hash_value": os_hash_value}
        if job.expected is None:
            q.update_columns(conn, job.image_id, **hashes)
        else:
            q.set_status(conn, job.image_id, states.IMPORTING, states.ACTIVE, **hashes)
        _unlock(conn, record)


def _give_up(db: Database, stores: StoreSet, job: LocationJob) -> None:
    """An image still waiting for its hash to be checked goes back to `queued` without the
    location (whose bytes go when no image refers to them, as Glance's revert deletes them); an
    active one keeps it, without hashes."""
    released = None
    with db.write() as conn:
        record = import_state.held(conn, job.image_id, job.task_id)
        if record is None:
            return
        if job.expected is not None and q.set_status(
            conn, job.image_id, states.IMPORTING, states.QUEUED, store=None, blob_key=None, **dq.NO_DATA
        ):
            released = blob_refs.release(conn, job.key)
        _unlock(conn, record)
    if released is not None:
        stores[job.store].delete(released)


def _unlock(conn: Connection, record: ImageRecord) -> None:
    after = {k: v for k, v in record.properties.items() if k != import_state.LOCK}
    q.replace_properties(conn, record.id, record.properties, after)
