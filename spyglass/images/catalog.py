"""Image metadata: create, show, list, update with JSON patch, tags, deactivate, delete.

Every public function takes the caller's RequestContext and starts with `authorize` (through
`load_authorized` for one image). The one exception is deliberate: `update_image` parses the JSON
patch first, as Glance's request deserializer does, so a malformed patch is 400 whether or not the
image exists; the parse reads nothing from the database and reveals nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from spyglass.images import deletion as recycle
from spyglass.images import impact as safeguards
from spyglass.images import locations, notify, states
from spyglass.images import patch as image_patch
from spyglass.images import queries as q
from spyglass.images.impact import GLANCE, Safeguards
from spyglass.images.list_queries import ListQuery, list_page
from spyglass.images.patch import WRITABLE_COLUMNS
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.images.queries import ImageRecord
from spyglass.images.quotas import ENFORCED, IMAGE_COUNT_TOTAL, Quotas, change_owner, confirm, count_check
from spyglass.images.schemas import core_attributes, read_only_attributes, validator
from spyglass.timeutil import utcnow

# Names Glance reserves, and `locations`, which Spyglass does not offer (no image locations).
RESERVED = image_patch.RESERVED | {"locations"}
IMAGE_PROPERTY_QUOTA = 128
PROPERTY_NAME_MAX = 255
# Bytes (UTF-8) of one property value: the most a MySQL-backed Glance stores (a TEXT column), so no
# value Glance keeps is refused, while 128 properties cannot grow an image past ~8 MiB.
PROPERTY_VALUE_MAX = 65535
NUL_MESSAGE = "Strings must not contain NUL characters."
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# What a new image is when the client does not say (Glance's defaults).
CREATE_DEFAULTS: dict[str, Any] = {
    "visibility": "shared",
    "min_disk": 0,
    "min_ram": 0,
    "protected": False,
    "os_hidden": False,
}
SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)


def target_of(record: ImageRecord) -> Target:
    return Target(
        owner=record.owner,
        visibility=record.visibility,
        member_status=record.member_status,
        owner_suspended=record.owner_suspended,
        recycled=record.status == states.PENDING_DELETE,
    )


def load_authorized(
    conn: Connection, ctx: RequestContext, image_id: str, action: Action, *, lock: bool = False
) -> ImageRecord:
    """The image, if the caller may see it and perform the action; NotFound / Forbidden otherwise."""
    record = q.fetch_image(conn, image_id, ctx.project_id, lock=lock) if is_uuid(image_id) else None
    if record is None:
        raise NotFound(f"No image found with ID {image_id}")
    authorize(ctx, action, target_of(record), image_id=image_id)
    return record


def is_uuid(value: object) -> bool:
    """Is this an image id in the canonical 8-4-4-4-12 hex form (the image schema's pattern)?"""
    return isinstance(value, str) and UUID_PATTERN.fullmatch(value) is not None


# ---- validation shared by create and update --------------------------------------------------------


def _check_attribute_names(names: Any) -> None:
    for name in names:
        if name in read_only_attributes():
            raise Forbidden(f"Attribute '{name}' is read-only.")
        if name in RESERVED or image_patch.is_reserved(name):
            raise Forbidden(image_patch.ACCESS_DENIED, f"Attribute '{name}' is reserved.")


def _validate_document(doc: dict[str, Any]) -> None:
    errors = sorted(validator("image").iter_errors(doc), key=lambda e: [str(p) for p in e.path])
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.path)
        raise Invalid(f"Invalid value for '{where}': {error.message}" if where else error.message)
    if len(doc.get("tags", [])) > 128:
        raise TooLarge("Maximum number of tags per image (128) exceeded.")
    for name in ("min_disk", "min_ram"):
        if name in doc and doc[name] < 0:
            raise Invalid(f"Invalid value for '{name}': it must not be negative.")
        if name in doc and doc[name] > 2**31 - 1:
            raise Invalid(f"Invalid value for '{name}': it is too large.")
    for name, value in doc.items():
        if not 0 < len(name) <= PROPERTY_NAME_MAX:
            raise Invalid(f"Custom property should not be greater than {PROPERTY_NAME_MAX} characters.")
        if has_nul(name) or has_nul(value):
            raise Invalid(NUL_MESSAGE)
        if isinstance(value, str) and len(value) > PROPERTY_VALUE_MAX // 4:
            _check_value_size(name, value)


def _check_value_size(name: str, value: str) -> None:
    size = len(value.encode())
    if size > PROPERTY_VALUE_MAX:
        raise Invalid(
            f"The value of property '{name}' is {size} bytes; at most {PROPERTY_VALUE_MAX} are accepted."
        )


def has_nul(value: Any) -> bool:
    """Does a string, or a list of them, hold a NUL character? PostgreSQL cannot store one in text."""
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return isinstance(value, str) and "\x00" in value


def _check_visibility_change(ctx: RequestContext, record: Target, visibility: str, image_id: str) -> None:
    if visibility == "public":
        authorize(ctx, Action.PUBLICIZE_IMAGE, record, image_id=image_id)
    elif visibility == "community":
        authorize(ctx, Action.COMMUNITIZE_IMAGE, record, image_id=image_id)


def _split(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A client document -> (column values, extra properties, tags)."""
    columns = {k: doc[k] for k in WRITABLE_COLUMNS if k in doc}
    props = {k: v for k, v in doc.items() if k not in core_attributes()}
    tags = list(dict.fromkeys(doc.get("tags", [])))
    if len(props) > IMAGE_PROPERTY_QUOTA:
        raise TooLarge(f"Maximum number of image properties ({IMAGE_PROPERTY_QUOTA}) exceeded.")
    return columns, props, tags


# ---- create ----------------------------------------------------------------------------------------


def create_image(db: Database, ctx: RequestContext, body: Any, quotas: Quotas = ENFORCED) -> ImageRecord:
    authorize(ctx, Action.ADD_IMAGE)
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    body = dict(body)
    image_id = _new_image_id(body.pop("id", None))
    _check_attribute_names(body)
    _validate_document(body)
    given, props, tags = _split(body)
    columns = {**CREATE_DEFAULTS, "owner": ctx.project_id, **given}
    if columns["owner"] != ctx.project_id and not permits(ctx, Action.SET_IMAGE_OWNER, Target()):
        raise Forbidden(f"You are not permitted to create images owned by '{columns['owner']}'.")
    new = Target(owner=columns["owner"], visibility="private")
    _check_visibility_change(ctx, new, columns["visibility"], image_id)
    quotas.read_ahead(columns["owner"])
    now = utcnow()
    with db.write() as conn:
        row = {"id": image_id, "status": states.QUEUED, "created_at": now, "updated_at": now, **columns}
        if not q.insert_image(conn, row):
            # One answer whoever held the id, and whether it is live, in the bin or deleted.
            raise Conflict(f"Image with identifier {image_id} already exists!")
        q.replace_properties(conn, image_id, {}, props)
        q.replace_tags(conn, image_id, [], tags)
        # The owner's image count is checked in the read of the new image, when it can be.
        check = count_check(quotas, columns["owner"])
        if check is None:
            record = q.fetch_image(conn, image_id, ctx.project_id)
            confirm(conn, quotas, columns["owner"], {IMAGE_COUNT_TOTAL: 1})
        else:
            record, values = q.fetch_image_with(conn, image_id, ctx.project_id, check.columns, check.params)
            if record is not None:
                check.apply(*values)
        if record is not None:
            notify.announce(conn, notify.CREATE, record)
    assert record is not None
    return record


def _new_image_id(given: Any) -> str:
    if given is None:
        return str(uuid.uuid4())
    if not is_uuid(given):
        raise Invalid(f"Invalid value for 'id': {given!r} is not a UUID.")
    # An upper-case twin of an existing id would be another image under the "same" UUID.
    if given != given.lower():
        raise Invalid(f"Invalid value for 'id': {given!r} is not a lowercase UUID.")
    return str(given)


# ---- show and list -----------------------------------------------------------------------------------


def get_image(db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    # One statement (queries.fetch_image), consistent by itself: no transaction to open.
    with db.read_one_statement() as conn:
        return load_authorized(conn, ctx, image_id, Action.GET_IMAGE)


def list_images(db: Database, ctx: RequestContext, query: ListQuery) -> tuple[list[ImageRecord], bool]:
    """One page of images the caller may list, and whether a next page may exist."""
    authorize(ctx, Action.GET_IMAGES)
    sort = list(query.sort)
    if "id" not in [k for k, _ in sort]:
        sort.append(("id", sort[-1][1] if sort else "desc"))
    if query.marker is None:
        # The page is one statement, consistent by itself: no transaction to open.
        with db.read_one_statement() as conn:
            records = list_page(conn, ctx, query, sort, None)
        return records, len(records) == query.limit
    with db.read() as conn:
        marker = q.fetch_image(conn, query.marker, ctx.project_id) if is_uuid(query.marker) else None
        if marker is None or not _marker_visible(ctx, marker):
            raise Invalid(f"No image found with ID {query.marker}")
        records = list_page(conn, ctx, query, sort, marker)
    return records, len(records) == query.limit


def _marker_visible(ctx: RequestContext, marker: ImageRecord) -> bool:
    return permits(ctx, Action.GET_IMAGE, target_of(marker))


# ---- update --------------------------------------------------------------------------------------------


def _editable_document(record: ImageRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {k: getattr(record, k) for k in WRITABLE_COLUMNS}
    doc.update(record.properties)
    doc["tags"] = list(record.tags)
    return doc


def update_image(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    ops: Any,
    media_type: str,
    guard: Safeguards = GLANCE,
    quotas: Quotas = ENFORCED,
) -> ImageRecord:
    with db.write() as conn:
        return update_image_in(conn, ctx, image_id, ops, media_type, guard, quotas)


def update_image_in(
    conn: Connection,
    ctx: RequestContext,
    image_id: str,
    ops: Any,
    media_type: str,
    guard: Safeguards = GLANCE,
    quotas: Quotas = ENFORCED,
) -> ImageRecord:
    """update_image in the caller's transaction (the dashboard's share makes an image shared and
    adds its member in one)."""
    changes = image_patch.parse(ops, media_type)
    record = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE, lock=True)
    after = image_patch.apply(_editable_document(record), changes, media_type)
    _validate_document(after)
    columns, props, tags = _split(after)
    changed = {k: v for k, v in columns.items() if getattr(record, k) != v}
    _check_update_rules(ctx, record, changed)
    if "visibility" in changed:
        safeguards.visibility_changing(conn, ctx, record, changed["visibility"], guard)
    if changed or props != record.properties or sorted(tags) != sorted(record.tags):
        q.update_columns(conn, image_id, **changed)
        q.replace_properties(conn, image_id, record.properties, props)
        q.replace_tags(conn, image_id, record.tags, tags)
    if "owner" in changed:
        change_owner(conn, quotas, image_id, changed["owner"])
    fresh = q.fetch_image(conn, image_id, ctx.project_id)
    if fresh is not None:
        notify.announce(conn, notify.UPDATE, fresh)
    assert fresh is not None
    return fresh


def _check_update_rules(ctx: RequestContext, record: ImageRecord, changed: dict[str, Any]) -> None:
    if "visibility" in changed:
        _check_visibility_change(ctx, target_of(record), changed["visibility"], record.id)
    if "owner" in changed and not permits(ctx, Action.SET_IMAGE_OWNER, Target()):
        raise Forbidden(image_patch.ACCESS_DENIED, "Owner can't be updated by non admin.")
    for name in ("disk_format", "container_format"):
        if name in changed and record.status != states.QUEUED:
            raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")


# ---- tags ------------------------------------------------------------------------------------------------


def add_tag(db: Database, ctx: RequestContext, image_id: str, tag: str) -> None:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE, lock=True)
        if not tag or len(tag) > 255:
            raise Invalid("A tag must be between 1 and 255 characters long.")
        if has_nul(tag):
            raise Invalid(NUL_MESSAGE)
        if tag in record.tags:
            return
        if len(record.tags) >= 128:
            raise TooLarge("Maximum number of tags per image (128) exceeded.")
        q.replace_tags(conn, image_id, record.tags, [*record.tags, tag])
        q.update_columns(conn, image_id)
        notify.image(conn, notify.UPDATE, image_id)


def delete_tag(db: Database, ctx: RequestContext, image_id: str, tag: str) -> None:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.MODIFY_IMAGE, lock=True)
        if tag not in record.tags:
            raise NotFound(f"Tag {tag} not found on image {image_id}.")
        q.replace_tags(conn, image_id, record.tags, [t for t in record.tags if t != tag])
        q.update_columns(conn, image_id)
        notify.image(conn, notify.UPDATE, image_id)


# ---- status changes ------------------------------------------------------------------------------------


def deactivate_image(db: Database, ctx: RequestContext, image_id: str, guard: Safeguards = GLANCE) -> None:
    def before(conn: Connection, record: ImageRecord) -> None:
        safeguards.deactivating(conn, ctx, record, guard)

    _switch(db, ctx, image_id, Action.DEACTIVATE, (states.ACTIVE, states.DEACTIVATED), before)


def reactivate_image(db: Database, ctx: RequestContext, image_id: str) -> None:
    def before(conn: Connection, record: ImageRecord) -> None:
        safeguards.reactivating(conn, ctx, record)

    _switch(db, ctx, image_id, Action.REACTIVATE, (states.DEACTIVATED, states.ACTIVE), before)


def _switch(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    action: Action,
    change: tuple[str, str],
    before: Callable[[Connection, ImageRecord], None],
) -> None:
    """Move an image from one status to the other (already there: nothing to do); `before` runs
    the safeguards of the change once it is allowed."""
    current, target = change
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, action, lock=True)
        if record.status == target:
            return
        if record.status != current:
            raise Forbidden(f"Not allowed to {action.value} image in status '{record.status}'")
        before(conn, record)
        if not q.set_status(conn, image_id, current, target):
            raise Conflict(q.STATUS_RACE)
        notify.image(conn, notify.UPDATE, image_id)


def delete_image(
    db: Database,
    store: StoreSet,
    ctx: RequestContext,
    image_id: str,
    guard: Safeguards = GLANCE,
) -> None:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.DELETE_IMAGE, lock=True)
        if record.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        # Into the recycle bin, or removed; the bytes go only when no copy still refers to them.
        unreferenced = recycle.dispose(conn, ctx, record, guard)
    # The row is gone before the bytes: a failure here leaves an orphan blob (swept at start-up),
    # never an image pointing at missing data.
    locations.delete_blobs(store, unreferenced)
