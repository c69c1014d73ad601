"""An image's copies in the configured stores: `DELETE /v2/stores/{store_id}/{image_id}`.

Removing one store's copy keeps the others; the last copy cannot be removed (delete the image
instead), as Glance refuses it. The bytes go after commit when no other image (a copy into another
project, an identical upload) still refers to them (spyglass.blob_refs).
"""

from __future__ import annotations

from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, NotFound
from spyglass.images import locations, states
from spyglass.images.catalog import load_authorized
from spyglass.images.policy import Action


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
        if record["status"] != states.ACTIVE:
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
