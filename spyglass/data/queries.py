"""The SQL of the data package: staged data recorded, and start-up recovery's sweeps (images cut
off mid-upload or mid-import put back to `queued`, the blob keys images still refer to).

Status changes go through the state table (spyglass.images.states), bulk ones too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from spyglass.db.tables import image_locations, image_properties, images
from spyglass.images import states
from spyglass.timeutil import utcnow

# The columns that describe an image's data, as an image without data has them.
NO_DATA: dict[str, Any] = dict.fromkeys(("size", "checksum", "os_hash_algo", "os_hash_value", "virtual_size"))


def record_staged(conn: Connection, image_id: str, store: str | None, columns: dict[str, Any]) -> bool:
    """Record the staged data's digests and the store the import will write to; False when the
    image is no longer the one being staged (deleted, or staged by someone else)."""
    result = conn.execute(
        update(images)
        .where(images.c.id == image_id, images.c.status == states.UPLOADING, images.c.size.is_(None))
        .values(updated_at=utcnow(), store=store, **columns)
    )
    return result.rowcount == 1


def requeue_saving(conn: Connection) -> int:
    """Every image in `saving` back to `queued`; how many there were."""
    states.check_transition(states.SAVING, states.QUEUED)
    saving = update(images).where(images.c.status == states.SAVING)
    result = conn.execute(saving.values(status=states.QUEUED, updated_at=utcnow()))
    return result.rowcount


def ids_in(conn: Connection, statuses: Sequence[str]) -> list[str]:
    """The ids of the images in any of `statuses`."""
    return list(conn.execute(select(images.c.id).where(images.c.status.in_(statuses))).scalars())


def requeue_without_data(conn: Connection, image_ids: Sequence[str], statuses: Sequence[str]) -> None:
    """These images, while still in one of `statuses`, back to `queued` without data."""
    for status in statuses:
        states.check_transition(status, states.QUEUED)
    for image_id in image_ids:
        conn.execute(
            update(images)
            .where(images.c.id == image_id, images.c.status.in_(statuses))
            .values(status=states.QUEUED, updated_at=utcnow(), blob_key=None, store=None, **NO_DATA)
        )


def active_ids_with_property(conn: Connection, name: str) -> list[str]:
    """The ids of the active images that have the property `name`."""
    having = select(image_properties.c.image_id).where(image_properties.c.name == name)
    found = select(images.c.id).where(images.c.id.in_(having), images.c.status == states.ACTIVE)
    return list(conn.execute(found).scalars())


def referenced_blob_keys(conn: Connection) -> set[str]:
    """The blob keys of every location of every image (first ones and further ones)."""
    first = conn.execute(select(images.c.blob_key).where(images.c.blob_key.is_not(None))).scalars()
    further = conn.execute(select(image_locations.c.blob_key)).scalars()
    return {*first, *further}
