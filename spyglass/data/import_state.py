"""The import bookkeeping: Glance's `os_glance_*` properties of an image an import works on.

While an import (glance-direct, web-download or copy-image) runs, `os_glance_import_task` holds
its task id (the import lock, one import at a time) and `os_glance_importing_to_stores` the stores
it still writes to; each store leaves that list when its part ends, and a store that failed is
recorded in `os_glance_failed_import`. The lock goes when the import ends, or when start-up
recovery (spyglass.data.recovery) finds the import cut off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection

from spyglass.errors import Conflict
from spyglass.images import queries as q
from spyglass.images.queries import ImageRecord

LOCK = "os_glance_import_task"
IMPORTING_TO = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"


def check_free(record: ImageRecord) -> None:
    """Raise Conflict while another import holds the image's lock."""
    if LOCK in record.properties:
        raise Conflict(
            f"New operation on image '{record.id}' is not permitted as prior operation is still in progress"
        )


def take(conn: Connection, record: ImageRecord, task_id: str, stores: Iterable[str]) -> None:
    """Take the lock for `task_id`, which imports to `stores`."""
    q.replace_properties(conn, record.id, record.properties, started(record.properties, task_id, stores))


def held(conn: Connection, image_id: str, task_id: str, *, lock: bool = True) -> ImageRecord | None:
    """The image, if the import `task_id` still holds its lock (`lock`: the row locked too)."""
    record = q.fetch_image(conn, image_id, None, lock=lock)
    if record is None or record.properties.get(LOCK) != task_id:
        return None
    return record


def store_ended(conn: Connection, record: ImageRecord, store: str, *, failed: bool) -> None:
    """Record the part of the import to `store` as over; the lock stays until the last part."""
    after = part_ended(record.properties, store, failed=failed)
    q.replace_properties(conn, record.id, record.properties, after)


def first_part_ended(
    conn: Connection, record: ImageRecord, store: str, others: Sequence[str], *, failed: bool
) -> None:
    """Record the import into its first store, `store`, as over. A failure ends the whole import:
    the `others` will not be written either. After a success the import goes on into the others,
    and keeps its lock until they are done."""
    after = ended(record.properties, store, failed=failed)
    if failed:
        for other in others:
            after = ended(after, other, failed=True)
    elif others:
        after[LOCK] = record.properties[LOCK]
    q.replace_properties(conn, record.id, record.properties, after)


def release(conn: Connection, record: ImageRecord, stores: Iterable[str]) -> None:
    """Drop the lock at the end of an import to `stores`: none of them is importing any more."""
    after = {k: v for k, v in record.properties.items() if k != LOCK}
    after[IMPORTING_TO] = _names(record.properties.get(IMPORTING_TO, ""), remove=stores)
    q.replace_properties(conn, record.id, record.properties, after)


def end_interrupted(conn: Connection, image_id: str, properties: dict[str, str], store: str | None) -> None:
    """Record an import cut off by a crash as failed and drop its lock. `store`: the store an
    upload or web-download import was writing to; None for a copy-image of an active image, which
    fails every store it was still copying to."""
    if LOCK not in properties:
        return
    after = interrupted(properties) if store is None else ended(properties, store, failed=True)
    q.replace_properties(conn, image_id, properties, after)


def started(properties: dict[str, str], task_id: str, stores: Iterable[str]) -> dict[str, str]:
    """The properties while an import to `stores` runs: the lock, the stores importing, none failed."""
    stores = list(stores)
    after = {**properties, LOCK: task_id}
    after[IMPORTING_TO] = _names(properties.get(IMPORTING_TO, ""), add=stores)
    after[FAILED] = _names(properties.get(FAILED, ""), remove=stores)
    return after


def part_ended(properties: dict[str, str], store: str, *, failed: bool) -> dict[str, str]:
    """The properties once the part of the import to `store` has ended (the lock stays)."""
    after = dict(properties)
    after[IMPORTING_TO] = _names(properties.get(IMPORTING_TO, ""), remove=[store])
    if failed:
        after[FAILED] = _names(properties.get(FAILED, ""), add=[store])
    return after


def ended(properties: dict[str, str], store: str, *, failed: bool) -> dict[str, str]:
    """The properties once the import to `store` has ended: no lock, the store no longer
    importing, and the store among the failed ones if it failed."""
    after = {k: v for k, v in part_ended(properties, store, failed=failed).items() if k != LOCK}
    after.setdefault(FAILED, "")
    return after


def interrupted(properties: dict[str, str]) -> dict[str, str]:
    """The properties of an import cut off by a crash: no lock, every store it was importing to
    among the failed ones."""
    after = {k: v for k, v in properties.items() if k != LOCK}
    after[IMPORTING_TO] = ""
    after[FAILED] = _names(properties.get(FAILED, ""), add=properties.get(IMPORTING_TO, "").split(","))
    return after


def _names(stores: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> str:
    names = ({s for s in stores.split(",") if s} | set(add)) - set(remove) - {""}
    return ",".join(sorted(names))
