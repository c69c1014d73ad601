"""Copy into my project: a project that can see an image makes its own, without copying bytes.

`POST /v2/images/{id}/actions/copy` creates a private image owned by the caller's project with the
source's data, disk and container formats, checksums, properties and tags. The new image refers to
the source's blob (spyglass.blob_refs counts one more reference), so deleting the source, revoking
the share or deleting the source's project never breaks the copy.

Provenance is recorded as properties of the copy: `spyglass_copied_from_image`,
`spyglass_copied_from_owner` and `spyglass_copied_at`. The source's own `spyglass_*` properties
(its owner's protection opt-in, an earlier provenance) and its import bookkeeping (`os_glance_*`)
are not carried over.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Invalid
from spyglass.images import blob_refs, states
from spyglass.images import patch as image_patch
from spyglass.images import queries as q
from spyglass.images.catalog import NUL_MESSAGE, has_nul, load_authorized
from spyglass.images.policy import Action
from spyglass.images.queries import ImageRecord
from spyglass.images.quotas import ENFORCED, IMAGE_COUNT_TOTAL, IMAGE_SIZE_TOTAL, Quotas, claim
from spyglass.timeutil import isotime, utcnow

PREFIX = "spyglass_"
# What the copy takes from its source row, as it is.
COPIED_COLUMNS = (
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "min_disk",
    "min_ram",
    "blob_key",
    "store",
)


def copy_image(
    db: Database,
    ctx: RequestContext,
    image_id: str,
    body: Any,
    store_name: str,
    quotas: Quotas = ENFORCED,
) -> ImageRecord:
    name_given, name = _parse(body)
    if not ctx.project_id:
        raise Invalid("A copy belongs to a project: use a project-scoped token.")
    quotas.read_ahead(ctx.project_id)
    with db.write() as conn:
        source = load_authorized(conn, ctx, image_id, Action.COPY_IMAGE_TO_PROJECT, lock=True)
        if source.status != states.ACTIVE or not source.blob_key:
            raise Conflict(f"Only active images can be copied; image {image_id} is {source.status}.")
        # The copier owns the copy's whole logical size, though its bytes are shared (README "Quotas").
        stored = (source.size or 0) * (1 + len(source.extra_locations))
        claim(conn, quotas, ctx.project_id, {IMAGE_COUNT_TOTAL: 1, IMAGE_SIZE_TOTAL: stored})
        copy_id = str(uuid.uuid4())
        now = utcnow()
        row = {
            **{column: getattr(source, column) for column in COPIED_COLUMNS},
            "id": copy_id,
            "name": name if name_given else source.name,
            "owner": ctx.project_id,
            "status": states.ACTIVE,
            "visibility": "private",
            "protected": False,
            "os_hidden": False,
            "created_at": now,
            "updated_at": now,
        }
        q.insert_image(conn, row)
        q.replace_properties(conn, copy_id, {}, _properties(source, now))
        q.replace_tags(conn, copy_id, [], source.tags)
        blob_refs.retain(conn, source.blob_key, source.store or store_name, source)
        _share_further_locations(conn, source, copy_id)
        _record(conn, ctx, source, copy_id)
        copy = q.fetch_image(conn, copy_id, ctx.project_id)
    assert copy is not None
    return copy


def _share_further_locations(conn: Connection, source: ImageRecord, copy_id: str) -> None:
    """The copy refers to the source's blobs in every other store too (spyglass.locations)."""
    for location in source.extra_locations:
        q.add_location(conn, copy_id, location)
        blob_refs.retain(conn, location.key, location.store, source)


def _parse(body: Any) -> tuple[bool, str | None]:
    """(was a name given, the name) from an optional body {"name": ...}."""
    if body is None:
        return False, None
    if not isinstance(body, dict) or set(body) - {"name"}:
        raise Invalid('The body must be empty or a JSON object {"name": ...}.')
    if "name" not in body:
        return False, None
    name = body["name"]
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        raise Invalid("name must be a string of at most 255 characters, or null.")
    if has_nul(name):
        raise Invalid(NUL_MESSAGE)
    return True, name


def _properties(source: ImageRecord, now: Any) -> dict[str, str]:
    # Nor its import bookkeeping (os_glance_*): a lock copied from a running import would never be
    # released on the copy, and no one may remove reserved properties.
    props = {
        k: v for k, v in source.properties.items() if not k.startswith((PREFIX, image_patch.RESERVED_PREFIX))
    }
    props[PREFIX + "copied_from_image"] = source.id
    props[PREFIX + "copied_from_owner"] = source.owner or ""
    props[PREFIX + "copied_at"] = isotime(now) or ""
    return props


def _record(conn: Connection, ctx: RequestContext, source: ImageRecord, copy_id: str) -> None:
    copier = ctx.project_id if ctx.project_id != source.owner else None
    link = {"source_image": source.id, "copy_image": copy_id, "copy_owner": ctx.project_id}
    events.record(conn, ctx, source.id, source.owner, events.IMAGE_COPIED, member_id=copier, after=link)
    events.record(conn, ctx, copy_id, ctx.project_id, events.IMAGE_CREATED_BY_COPY, after=link)
