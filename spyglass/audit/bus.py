"""Sends the message bus outbox (spyglass.audit.notifications) through oslo.messaging, as Glance does.

Each node runs `send_due` in background rounds (spyglass.background). A round claims the oldest
rows no other node holds (a compare-and-set on `claimed_by`/`claimed_until`, held for LEASE), sends
them oldest first and deletes each row once the broker has taken its message. The first failure
ends the round: the row that failed and the rest of the claim are given back, to be tried again
after RETRY_AFTER, in the same order. A row is never dropped for a failing broker.

Sending is oslo.messaging's, with Glance's settings: the notification transport of
`notifications_transport_url`, the exchange Glance sets as its transport default (`glance`), the
topics of `notifications_topics` (routing key `<topic>.<priority>`), the messagingv2 envelope,
and the publisher id `image.<host name>`. oslo.messaging's Notifier logs and swallows a failed
send, which would lose the message once its row is deleted; so the round makes the transport call
that the Notifier's messagingv2 driver makes, which raises on failure, with the message the
Notifier would build (its message_id fixed when the change was made).

Delivery is at least once: a node that stops between the broker's acknowledgement and deleting
the row sends that message again, with the same message_id.
"""

from __future__ import annotations

import functools
import importlib
import logging
import socket
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from spyglass.audit import queries
from spyglass.audit.queries import Notification
from spyglass.db.engine import Database
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
RETRY_AFTER = timedelta(seconds=5)
BATCH = 200
ERROR_MAX = 500
# Attempts at reaching the broker within one send before the round gives up (oslo.messaging's `retry`).
SEND_RETRIES = 1

# One message: (event type, priority, the message's dict) -> None; raises when the broker did not take it.
Publish = Callable[[Notification, dict[str, Any]], None]


def publisher_id(settings: Settings) -> str:
    """Glance's default_publisher_id is `image.localhost`; deployments set it to `image.<host>`."""
    return settings.notifications_publisher_id or f"image.{socket.gethostname()}"


def _oslo_messaging() -> Any:
    """oslo.messaging, imported when a server has a bus: it imports eventlet, which warns on import
    that it is deprecated (a plain Warning; Spyglass runs none of it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("oslo_messaging")


# Imported with this module (on the main thread: eventlet's greenlet state made in the event loop's
# thread keeps that thread from ending).
oslo_messaging = _oslo_messaging()


class Bus:
    """An oslo.messaging notification transport and what Glance sends on it."""

    def __init__(self, settings: Settings) -> None:
        self._target = oslo_messaging.Target
        conf = importlib.import_module("oslo_config.cfg").ConfigOpts()
        conf([], project="spyglass", default_config_files=[], default_config_dirs=[])
        # What glance.notifier.set_defaults does: Glance's exchange, `glance` unless configured.
        oslo_messaging.set_transport_defaults(settings.notifications_exchange)
        self.transport = oslo_messaging.get_notification_transport(
            conf, url=settings.notifications_transport_url
        )
        self.topics = settings.notifications_topics
        self.publisher_id = publisher_id(settings)

    def message(self, row: Notification) -> dict[str, Any]:
        """The message oslo.messaging's Notifier builds (before the messagingv2 envelope)."""
        return {
            "message_id": row.message_id,
            "publisher_id": self.publisher_id,
            "event_type": row.event_type,
            "priority": row.priority,
            "payload": orjson.loads(row.payload),
            "timestamp": str(row.created_at),
        }

    def publish(self, row: Notification) -> None:
        message = self.message(row)
        for topic in self.topics:
            target = self._target(topic=f"{topic}.{row.priority.lower()}")
            # The messagingv2 driver's call (version 2.0: the oslo.message envelope), which raises.
            self.transport._send_notification(target, {}, message, version=2.0, retry=SEND_RETRIES)

    def close(self) -> None:
        self.transport.cleanup()


def send_due(db: Database, bus: Bus, now: datetime | None = None) -> int:
    """One round: send what this node could claim, oldest first; the number sent."""
    now = now or utcnow()
    token = str(uuid.uuid4())
    with db.write() as conn:
        queries.claim_notifications(conn, token, now, now + LEASE, BATCH)
    with db.read() as conn:
        claimed = queries.claimed_notifications(conn, token)
    sent = 0
    for row in claimed:
        try:
            bus.publish(row)
        except Exception as exc:  # any failure of the transport: the row waits for the next round
            error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
            log.warning("notification %s (%s) not sent, kept for later: %s", row.id, row.event_type, error)
            with db.write() as conn:
                queries.release_notifications(conn, token, error, utcnow() + RETRY_AFTER, row.id)
            return sent
        with db.write() as conn:
            queries.delete_notification(conn, row.id, token)
        sent += 1
    return sent


def sending_round(db: Database, settings: Settings) -> tuple[Callable[[], int], Bus]:
    """The server's round (spyglass.background) and its bus, to close at shutdown."""
    bus = Bus(settings)
    return functools.partial(send_due, db, bus), bus
