"""Images API wire rendering: records to the JSON documents Glance clients expect."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spyglass.images import locations, states
from spyglass.images.queries import ImageRecord, Location
from spyglass.timeutil import isotime

_CORE_ORDER = (
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "size",
    "virtual_size",
    "status",
    "checksum",
    "protected",
    "min_ram",
    "min_disk",
    "owner",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
    "id",
)
_core_values = operator.attrgetter(*_CORE_ORDER)


@dataclass(frozen=True)
class StoreRendering:
    """How an image's locations show: its `stores`, and `direct_url` / `locations` when the
    deployment turns them on (Glance's show_image_direct_url and show_multiple_locations)."""

    default: str
    url: Callable[[Location], str] = lambda location: ""
    show_direct_url: bool = False
    show_locations: bool = False

    def add_to(self, doc: dict[str, Any], record: ImageRecord) -> None:
        # Glance hides the locations, and so the stores, of a deactivated image
        # (51-list-images-owner.http).
        if record.status != states.ACTIVE:
            return
        found = [Location(loc.store or self.default, loc.key) for loc in locations.of(record)]
        if not found:
            return
        doc["stores"] = ",".join(location.store for location in found)
        if self.show_direct_url:
            doc["direct_url"] = self.url(found[0])
        if self.show_locations:
            doc["locations"] = [{"url": self.url(loc), "metadata": {"store": loc.store}} for loc in found]


def image(record: ImageRecord, stores: StoreRendering | str | None = None) -> dict[str, Any]:
    # Extra properties come first, as Glance renders them.
    doc: dict[str, Any] = dict(record.properties)
    doc.update(zip(_CORE_ORDER, _core_values(record), strict=True))
    image_id = record.id
    doc["created_at"] = isotime(record.created_at)
    doc["updated_at"] = isotime(record.updated_at)
    doc["tags"] = list(record.tags)
    doc["self"] = f"/v2/images/{image_id}"
    doc["file"] = f"/v2/images/{image_id}/file"
    doc["schema"] = "/v2/schemas/image"
    if isinstance(stores, str):
        stores = StoreRendering(stores)
    if stores is not None:
        stores.add_to(doc, record)
    return doc


def member(row: Any) -> dict[str, Any]:
    doc = {
        "member_id": row["member_id"],
        "image_id": row["image_id"],
        "status": row["status"],
        "created_at": isotime(row["created_at"]),
        "updated_at": isotime(row["updated_at"]),
        "schema": "/v2/schemas/member",
    }
    # Shares that end on a date (Spyglass): shown only when set, so Glance's answer is unchanged.
    if row.get("expires_at") is not None:
        doc["expires_at"] = isotime(row["expires_at"])
    return doc
