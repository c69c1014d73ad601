"""Queries on the image tables: fetch one image with the caller's membership, insert, update and
delete image rows (every status change through the compare-and-set `set_status`), and load the
properties, tags and locations of images. A page of a list, with its images' extras in the same
statement: spyglass.images.list_queries."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    DateTime,
    Select,
    Subquery,
    Text,
    bindparam,
    delete,
    insert,
    literal_column,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from spyglass.db import upsert
from spyglass.db.tables import (
    image_locations,
    image_members,
    image_properties,
    image_tags,
    image_usage,
    images,
    recycle_bin,
    used_image_ids,
)
from spyglass.images import states
from spyglass.images.visibility import owner_suspended
from spyglass.timeutil import utcnow

# What a service says when set_status lost its race.
STATUS_RACE = "The image status changed during the request; try again."


class Location(NamedTuple):
    """Where a copy of an image's data lives: a store's name and the blob's key in it."""

    store: str
    key: str


@dataclass(frozen=True)
class ImageRow:
    """One row of the images table, typed (the wire names: spyglass.api.render maps them to JSON)."""

    id: str
    name: str | None
    owner: str | None
    status: str
    visibility: str
    disk_format: str | None
    container_format: str | None
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    min_disk: int
    min_ram: int
    protected: bool
    os_hidden: bool
    blob_key: str | None
    created_at: datetime
    updated_at: datetime
    # The store holding blob_key; None: the default store.
    store: str | None

    def columns(self) -> dict[str, Any]:
        """The row as the images table has it, column by column."""
        return {name: getattr(self, name) for name in COLUMNS}


COLUMNS = tuple(f.name for f in fields(ImageRow))


@dataclass(frozen=True)
class ImageRecord(ImageRow):
    """An image row with its extra properties, tags, and the caller's member status (if any)."""

    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    member_status: str | None = None
    owner_suspended: bool = False
    # Locations beyond the first (images.store/blob_key), oldest first (spyglass.images.locations).
    extra_locations: list[Location] = field(default_factory=list)

    @classmethod
    def of(cls, row: Mapping[str, Any], **extra: Any) -> ImageRecord:
        """A record of an images row (any mapping holding every column) and its extras."""
        return cls(**{name: row[name] for name in COLUMNS}, **extra)


def fetch_image(
    conn: Connection, image_id: str, project_id: str | None, *, lock: bool = False
) -> ImageRecord | None:
    """The image with its properties, tags and further locations and the caller's member status, in
    one statement (one row per property, tag and location, ordered by kind).

    With `lock` on PostgreSQL the image row is locked first, in a statement of its own: a statement
    that waited for the lock sees the locked row as committed meanwhile but the rest (its tags, ...)
    as they were when it began, so the extras are read by a statement that starts after the wait."""
    return fetch_image_with(conn, image_id, project_id, lock=lock)[0]


def fetch_image_with(
    conn: Connection,
    image_id: str,
    project_id: str | None,
    columns: tuple[ColumnElement[Any], ...] = (),
    params: Mapping[str, Any] | None = None,
    *,
    lock: bool = False,
) -> tuple[ImageRecord | None, tuple[Any, ...]]:
    """`fetch_image`, and in the same statement the values of the caller's `columns` (bound by
    `params`); () with no image."""
    if lock and conn.dialect.name == "postgresql":
        conn.execute(_LOCK_IMAGE, {"image_id": image_id})
    statement = _one_image_with(columns) if columns else _ONE_IMAGE
    bound = {**(params or {}), "image_id": image_id, "project_id": project_id or ""}
    rows = conn.execute(statement, bound).all()
    if not rows:
        return None, ()
    properties: dict[str, str] = {}
    tags: list[str] = []
    extra: list[Location] = []
    for row in rows:
        kind, first, second = row.extra_kind, row.extra_first, row.extra_second
        if kind == "p":
            properties[first] = second
        elif kind == "t":
            tags.append(first)
        elif kind == "l":
            extra.append(Location(first, second))
    head: Mapping[str, Any] = rows[0]._mapping  # type: ignore[assignment]
    record = ImageRecord.of(
        head,
        properties=properties,
        tags=tags,
        member_status=head["member_status"],
        owner_suspended=bool(head["owner_suspended"]),
        extra_locations=extra,
    )
    return record, tuple(rows[0])[len(rows[0]) - len(columns) :]


def _extras(*where: ColumnElement[bool]) -> Subquery:
    """The properties, tags and further locations of the images the three conditions (on
    image_properties, image_tags and image_locations) pick, as one union: image_id, kind ("p", "t",
    "l"), first (name, value, store), second (value, -, blob key) and at (a location's time)."""
    no_time = null().cast(DateTime)
    on_properties, on_tags, on_locations = where
    return union_all(
        select(
            image_properties.c.image_id.label("image_id"),
            literal_column("'p'").label("kind"),
            image_properties.c.name.label("first"),
            image_properties.c.value.label("second"),
            no_time.label("at"),
        ).where(on_properties),
        select(
            image_tags.c.image_id, literal_column("'t'"), image_tags.c.value, null().cast(Text), no_time
        ).where(on_tags),
        select(
            image_locations.c.image_id,
            literal_column("'l'"),
            image_locations.c.store,
            image_locations.c.blob_key,
            image_locations.c.created_at,
        ).where(on_locations),
    ).subquery("extras")


def _one_image() -> Select[Any]:
    """fetch_image's statement, built once: the image row outer-joined to the union of its extras.

    Each kind of extra keeps the order load_extras and load_locations give it: properties by name,
    tags by value, locations by creation time then store.
    """
    image_id: BindParameter[str] = bindparam("image_id")
    extras = _extras(
        image_properties.c.image_id == image_id,
        image_tags.c.image_id == image_id,
        image_locations.c.image_id == image_id,
    )
    member = (
        select(image_members.c.status)
        .where(image_members.c.image_id == images.c.id, image_members.c.member_id == bindparam("project_id"))
        .scalar_subquery()
    )
    return (
        select(
            images,
            member.label("member_status"),
            owner_suspended().label("owner_suspended"),
            extras.c.kind.label("extra_kind"),
            extras.c.first.label("extra_first"),
            extras.c.second.label("extra_second"),
        )
        .select_from(images.outerjoin(extras, true()))
        .where(images.c.id == image_id)
        .order_by(extras.c.kind, extras.c.at, extras.c.first)
    )


_ONE_IMAGE = _one_image()


@functools.cache
def _one_image_with(columns: tuple[ColumnElement[Any], ...]) -> Select[Any]:
    """fetch_image's statement with the caller's columns last (each set of columns built once)."""
    return _ONE_IMAGE.add_columns(*columns)


_LOCK_IMAGE = select(images.c.id).where(images.c.id == bindparam("image_id")).with_for_update()


def insert_image(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert a new image row; False when the id is, or ever was, used by an image. The caller must
    end the transaction after a False (PostgreSQL aborts it on a unique violation)."""
    reserve = (
        upsert.insert(conn.dialect.name, used_image_ids)
        .values(id=row["id"])
        .on_conflict_do_nothing(index_elements=[used_image_ids.c.id])
        .returning(used_image_ids.c.id)
    )
    if conn.execute(reserve).first() is None:
        return False
    try:
        conn.execute(insert(images).values(**row))
    except IntegrityError:
        return False
    return True


def update_columns(conn: Connection, image_id: str, **values: Any) -> None:
    """Set these columns of one image (none: only touch it) and its updated_at."""
    conn.execute(update(images).where(images.c.id == image_id).values(**values, updated_at=utcnow()))


def set_status(conn: Connection, image_id: str, current: str, target: str, **values: Any) -> bool:
    """Compare-and-set the status (a transition the state machine allows), with other columns;
    False when another request changed it first. `values` may give updated_at (default: now)."""
    states.check_transition(current, target)
    result = conn.execute(
        update(images)
        .where(images.c.id == image_id, images.c.status == current)
        .values({"updated_at": utcnow(), **values, "status": target})
    )
    return result.rowcount == 1


def delete_row(conn: Connection, image_id: str) -> None:
    """Delete the image row; the rows that refer to it go with it (cascade)."""
    conn.execute(delete(images).where(images.c.id == image_id))


def load_extras(
    conn: Connection, image_ids: Sequence[str]
) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    props: dict[str, dict[str, str]] = {}
    tags: dict[str, list[str]] = {}
    if not image_ids:
        return props, tags
    rows = conn.execute(
        select(image_properties)
        .where(image_properties.c.image_id.in_(image_ids))
        .order_by(image_properties.c.name)
    )
    for image_id, name, value in rows:
        props.setdefault(image_id, {})[name] = value
    rows = conn.execute(
        select(image_tags).where(image_tags.c.image_id.in_(image_ids)).order_by(image_tags.c.value)
    )
    for image_id, value in rows:
        tags.setdefault(image_id, []).append(value)
    return props, tags


def load_locations(conn: Connection, image_ids: Sequence[str]) -> dict[str, list[Location]]:
    """The further locations of these images, oldest first."""
    found: dict[str, list[Location]] = {}
    if not image_ids:
        return found
    rows = conn.execute(
        select(image_locations.c.image_id, image_locations.c.store, image_locations.c.blob_key)
        .where(image_locations.c.image_id.in_(image_ids))
        .order_by(image_locations.c.created_at, image_locations.c.store)
    )
    for image_id, store, key in rows:
        found.setdefault(image_id, []).append(Location(store, key))
    return found


def replace_properties(conn: Connection, image_id: str, old: dict[str, str], new: dict[str, str]) -> None:
    removed = [k for k in old if k not in new]
    if removed:
        conn.execute(
            delete(image_properties).where(
                image_properties.c.image_id == image_id, image_properties.c.name.in_(removed)
            )
        )
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if changed:
        conn.execute(
            delete(image_properties).where(
                image_properties.c.image_id == image_id, image_properties.c.name.in_(list(changed))
            )
        )
        conn.execute(
            insert(image_properties),
            [{"image_id": image_id, "name": k, "value": v} for k, v in changed.items()],
        )


def replace_tags(conn: Connection, image_id: str, old: Iterable[str], new: Iterable[str]) -> None:
    old_set, new_set = set(old), set(new)
    if old_set - new_set:
        conn.execute(
            delete(image_tags).where(
                image_tags.c.image_id == image_id, image_tags.c.value.in_(old_set - new_set)
            )
        )
    if new_set - old_set:
        conn.execute(
            insert(image_tags),
            [{"image_id": image_id, "value": t} for t in sorted(new_set - old_set)],
        )


def add_location(conn: Connection, image_id: str, location: Location) -> None:
    """One more location of the image's data, after those it has (spyglass.images.locations)."""
    conn.execute(
        insert(image_locations).values(
            image_id=image_id, store=location.store, blob_key=location.key, created_at=utcnow()
        )
    )


def delete_location(conn: Connection, image_id: str, store: str) -> None:
    """Forget the image's further location in this store."""
    conn.execute(
        delete(image_locations).where(
            image_locations.c.image_id == image_id, image_locations.c.store == store
        )
    )


def recent_consumers(
    conn: Connection, image_id: str, since: datetime, *, exclude: str | None, only: str | None = None
) -> list[str]:
    """Projects other than `exclude` that downloaded the image at or after `since`, sorted."""
    stmt = select(image_usage.c.project_id).where(
        image_usage.c.image_id == image_id, image_usage.c.last_download_at >= since
    )
    if exclude is not None:
        stmt = stmt.where(image_usage.c.project_id != exclude)
    if only is not None:
        stmt = stmt.where(image_usage.c.project_id == only)
    return sorted(conn.execute(stmt).scalars())


# ---- the recycle bin (spyglass.images.deletion, spyglass.images.recycle_bin) ----------------------------


@dataclass(frozen=True)
class BinEntry:
    """An image in the recycle bin: a few of its columns and how it came there."""

    image_id: str
    name: str | None
    owner: str | None
    size: int | None
    previous_status: str
    deleted_at: datetime
    purge_after: datetime
    deleted_by_user: str | None
    deleted_by_project: str | None


def put_in_bin(
    conn: Connection,
    image_id: str,
    previous_status: str,
    deleted_at: datetime,
    purge_after: datetime,
    deleted_by: tuple[str | None, str | None],
) -> None:
    """Record that the image (now pending_delete) is in the bin; `deleted_by` is (user, project)."""
    user, project = deleted_by
    conn.execute(
        insert(recycle_bin).values(
            image_id=image_id,
            previous_status=previous_status,
            deleted_at=deleted_at,
            purge_after=purge_after,
            deleted_by_user=user,
            deleted_by_project=project,
        )
    )


def take_out_of_bin(conn: Connection, image_id: str) -> str | None:
    """Forget the image's bin entry; the status it had when it was deleted (None: no entry)."""
    previous: str | None = conn.execute(
        select(recycle_bin.c.previous_status).where(recycle_bin.c.image_id == image_id)
    ).scalar()
    conn.execute(delete(recycle_bin).where(recycle_bin.c.image_id == image_id))
    return previous


def purge_after(conn: Connection, image_id: str) -> datetime | None:
    """When the image's retention in the bin ends (None: it is not in the bin)."""
    due: datetime | None = conn.execute(
        select(recycle_bin.c.purge_after).where(recycle_bin.c.image_id == image_id)
    ).scalar()
    return due


def due_for_purge(conn: Connection, now: datetime) -> list[str]:
    """The images whose retention in the bin ended by `now`."""
    due = conn.execute(select(recycle_bin.c.image_id).where(recycle_bin.c.purge_after <= now))
    return list(due.scalars())


def bin_entries(conn: Connection, owner: str | None) -> list[BinEntry]:
    """The bin's images of one owner project (None: of every project), soonest purge first."""
    stmt = (
        select(images.c.name, images.c.owner, images.c.size, recycle_bin)
        .join(recycle_bin, recycle_bin.c.image_id == images.c.id)
        .order_by(recycle_bin.c.purge_after, images.c.id)
    )
    if owner is not None:
        stmt = stmt.where(images.c.owner == owner)
    return [BinEntry(**{name: row[name] for name in _BIN_FIELDS}) for row in conn.execute(stmt).mappings()]


_BIN_FIELDS = tuple(f.name for f in fields(BinEntry))
