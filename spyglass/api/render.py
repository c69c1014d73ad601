"""Images API wire rendering: records to the JSON documents Glance clients expect."""

from __future__ import annotations

from typing import Any

from spyglass import states
from spyglass.db.image_queries import ImageRecord
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


def image(record: ImageRecord, store_name: str | None = None) -> dict[str, Any]:
    row = record.row
    # Extra properties come first, as Glance renders them.
    doc: dict[str, Any] = dict(record.properties)
    for key in _CORE_ORDER:
        doc[key] = row[key]
    image_id = row["id"]
    doc["created_at"] = isotime(row["created_at"])
    doc["updated_at"] = isotime(row["updated_at"])
    doc["tags"] = list(record.tags)
    doc["self"] = f"/v2/images/{image_id}"
    doc["file"] = f"/v2/images/{image_id}/file"
    doc["schema"] = "/v2/schemas/image"
    # Glance hides the locations, and so the stores, of a deactivated image (51-list-images-owner.http).
    if store_name and row["blob_key"] and row["status"] == states.ACTIVE:
        doc["stores"] = store_name
    return doc


def member(row: Any) -> dict[str, Any]:
    return {
        "member_id": row["member_id"],
        "image_id": row["image_id"],
        "status": row["status"],
        "created_at": isotime(row["created_at"]),
        "updated_at": isotime(row["updated_at"]),
        "schema": "/v2/schemas/member",
    }
