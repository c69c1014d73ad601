"""The configured stores as the API shows them (`/v2/info/stores`), and an image's copies in them
(`DELETE /v2/stores/{store_id}/{image_id}`).

Removing one store's copy keeps the others; the last copy cannot be removed (delete the image
instead), as Glance refuses it. The bytes go after commit when no other image (a copy into another
project, an identical upload) still refers to them (spyglass.blob_refs).
"""

from __future__ import annotations

from typing import Any

from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, NotFound
from spyglass.images import locations, states
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action, authorize

# The store types as Glance names its drivers.
GLANCE_TYPES = {"filesystem": "file", "swift": "swift", "s3": "s3", "memory": "memory"}


def describe(ctx: RequestContext, stores: StoreSet, *, detail: bool = False) -> list[dict[str, Any]]:
    """The stores on offer; with `detail` (admins only) their types and properties too."""
    if detail:
        authorize(ctx, Action.GET_STORES_DETAIL)
    return [_detail(stores, name) if detail else _summary(stores, name) for name in stores]


def _summary(stores: StoreSet, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": name}
    description = stores.description(name)
    if description:
        entry["description"] = description
    if name == stores.default_name:
        entry["default"] = "true"
    return entry


def _detail(stores: StoreSet, name: str) -> dict[str, Any]:
    entry = _summary(stores, name)
    spec = stores.specs.get(name)
    entry["type"] = GLANCE_TYPES[spec.type] if spec is not None else "unknown"
    entry["properties"] = spec.properties() if spec is not None else {}
    return entry


def delete_from_store(
    db: Database,
    stores: StoreSet,
    default: str,
    ctx: RequestContext,
    store_id: str,
    image_id: str,
) -> None:
    if store_id not in stores:
        raise NotFound(f"Unknown store {store_id}.", "The selected store is not available on this node.")
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.DELETE_IMAGE_LOCATION, lock=True)
        if record.status != states.ACTIVE:
            raise Conflict("It's not allowed to remove image data from store if image status is not 'active'")
        held = locations.of(record)
        chosen = [loc for loc in held if (loc.store or default) == store_id]
        if not chosen:
            raise NotFound(f"Image {image_id} is not available at store {store_id}.")
        if len(held) == 1:
            raise Forbidden(
                "Cannot delete image data from the only store containing it. "
                "Consider deleting the image instead."
            )
        unreferenced = locations.remove(conn, record, chosen[0])
    if unreferenced is not None:
        locations.delete_blobs(stores, [unreferenced])
