"""Glance's image notifications (spyglass.audit.notifications), with Glance's payloads.

The service functions call these in the transaction of the change: image.create, image.update
(metadata, tags, deactivate/reactivate), image.delete, and for data image.prepare, image.upload and
image.activate; image.send when data is sent (spyglass.sharing.usage).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from spyglass.audit import notifications
from spyglass.images import queries as q
from spyglass.images.queries import ImageRecord
from spyglass.timeutil import isotime, utcnow

CREATE, UPDATE, DELETE = "image.create", "image.update", "image.delete"
PREPARE, UPLOAD, ACTIVATE, SEND = "image.prepare", "image.upload", "image.activate", "image.send"


def payload(record: ImageRecord) -> dict[str, Any]:
    """Glance's format_image_notification: the image without its locations (they may hold credentials)."""
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "created_at": isotime(record.created_at),
        "updated_at": isotime(record.updated_at),
        "min_disk": record.min_disk,
        "min_ram": record.min_ram,
        "protected": record.protected,
        "checksum": record.checksum,
        "owner": record.owner,
        "disk_format": record.disk_format,
        "container_format": record.container_format,
        "size": record.size,
        "virtual_size": record.virtual_size,
        "is_public": record.visibility == "public",
        "visibility": record.visibility,
        "properties": dict(record.properties),
        "tags": list(record.tags),
        "deleted": False,
        "deleted_at": None,
    }


def import_properties(record: ImageRecord) -> dict[str, list[str]]:
    """What Glance adds to image.prepare and image.upload: the stores an import is still writing to
    and those it failed on."""
    importing = record.properties.get("os_glance_importing_to_stores") or ""
    failed = record.properties.get("os_glance_failed_import") or ""
    return {
        "os_glance_importing_to_stores": [s for s in importing.split(",") if s],
        "os_glance_failed_import": [s for s in failed.split(",") if s],
    }


def announce(conn: Connection, event_type: str, record: ImageRecord) -> None:
    """Announce the image as the record holds it."""
    notifications.emit(conn, event_type, payload(record))


def image(conn: Connection, event_type: str, image_id: str, **extra: Any) -> None:
    """Announce the image as it now is in this transaction (nothing if it is gone)."""
    if not notifications.enabled(conn):
        return
    record = q.fetch_image(conn, image_id, None)
    if record is not None:
        notifications.emit(conn, event_type, {**payload(record), **extra})


def deleted(conn: Connection, record: ImageRecord, status: str) -> None:
    """image.delete: the image in its new status (deleted, or pending_delete in the recycle bin),
    marked deleted now, as Glance sends it."""
    if notifications.enabled(conn):
        gone = {"status": status, "deleted": True, "deleted_at": isotime(utcnow())}
        notifications.emit(conn, DELETE, {**payload(record), **gone})


def data_received(conn: Connection, image_id: str, store: str | None, activated: bool) -> None:
    """image.upload once the data is in (and image.activate when that made the image active)."""
    if not notifications.enabled(conn):
        return
    record = q.fetch_image(conn, image_id, None)
    if record is None:
        return
    backend = {"backend": store} if store else {}
    notifications.emit(conn, UPLOAD, {**payload(record), **import_properties(record), **backend})
    if activated:
        notifications.emit(conn, ACTIVATE, payload(record))


def preparing(conn: Connection, record: ImageRecord, store: str | None) -> None:
    """image.prepare: data is about to be written."""
    backend = {"backend": store} if store else {}
    notifications.emit(conn, PREPARE, {**payload(record), **import_properties(record), **backend})


def sent(
    conn: Connection,
    record: ImageRecord,
    nbytes: int,
    project_id: str | None,
    user_id: str | None,
    destination_ip: str | None,
    priority: str = notifications.INFO,
) -> None:
    """image.send: data sent to a project (ERROR priority when not all of it went out)."""
    notifications.emit(
        conn,
        SEND,
        {
            "bytes_sent": nbytes,
            "image_id": record.id,
            "owner_id": record.owner,
            "receiver_tenant_id": project_id,
            "receiver_user_id": user_id,
            "destination_ip": destination_ip,
        },
        priority,
    )
