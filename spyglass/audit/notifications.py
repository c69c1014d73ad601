"""The message bus outbox, write side: Glance's notifications, queued in the change's transaction.

The service function that makes a change calls `emit` in the transaction that writes it, so a
notification exists exactly when its change does: a rolled-back change leaves none, and a committed
one is sent even if the broker is down or the server stops before sending (spyglass.audit.bus sends
the outbox in the background and deletes each row once the broker took it). An API call never talks
to the broker.

Notifications are on for a database when the server was started with `notifications_transport_url`
(`enable`); otherwise `emit` writes nothing. The payloads are Glance's (spyglass.images.notify,
spyglass.data.tasks); Spyglass's own audit events go out as `spyglass.<event type>`
(spyglass.audit.events).
"""

from __future__ import annotations

import uuid
import weakref
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from spyglass.audit import queries
from spyglass.timeutil import utcnow

INFO, ERROR = "INFO", "ERROR"

# The engines of the databases whose changes are announced on the bus.
_enabled: weakref.WeakSet[Engine] = weakref.WeakSet()


def enable(engine: Engine) -> None:
    _enabled.add(engine)


def disable(engine: Engine) -> None:
    _enabled.discard(engine)


def enabled(conn: Connection) -> bool:
    return conn.engine in _enabled


def emit(conn: Connection, event_type: str, payload: dict[str, Any], priority: str = INFO) -> None:
    """Queue one notification in the caller's transaction (nothing when notifications are off)."""
    emit_many(conn, [(event_type, payload)], priority)


def emit_many(conn: Connection, notes: list[tuple[str, dict[str, Any]]], priority: str = INFO) -> None:
    if not notes or not enabled(conn):
        return
    now = utcnow()
    rows = [
        {
            # Fixed when the change is made: a consumer can tell a message sent again (a node that
            # stopped between the broker's acknowledgement and deleting the row) from a new one.
            "message_id": str(uuid.uuid4()),
            "event_type": event_type,
            "priority": priority,
            "payload": orjson.dumps(payload).decode(),
            "created_at": now,
            "attempts": 0,
        }
        for event_type, payload in notes
    ]
    queries.insert_notifications(conn, rows)
