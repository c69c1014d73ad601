"""The webhook outbox: each event that concerns a project with webhooks is queued in the table
`webhook_deliveries`, in the event's own transaction, so nothing is lost on a restart.

spyglass.audit.delivery sends the queued deliveries as JSON POSTs signed with HMAC-SHA256 of the
body under the webhook's secret (`X-Spyglass-Signature: sha256=<hex>`). Secrets are kept sealed
in the database under a key outside it (spyglass.secret_box). Projects register their webhooks
through spyglass.sharing.webhooks.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
from sqlalchemy import Connection

from spyglass.audit import queries
from spyglass.db.engine import Database
from spyglass.secret_box import SecretBox, is_sealed
from spyglass.timeutil import utcnow

PENDING, DEAD = "pending", "dead"


def sign(secret: str, body: bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC-SHA256 of the body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def enqueue(conn: Connection, event: dict[str, Any], projects: set[str]) -> None:
    """Queue one delivery of the event for every webhook of these projects."""
    enqueue_many(conn, [(event, projects)])


def enqueue_many(conn: Connection, events: list[tuple[dict[str, Any], set[str]]]) -> None:
    """Queue the deliveries of several events (each for the webhooks of its projects) at once."""
    everyone = set().union(*(projects for _event, projects in events)) if events else set()
    if not everyone:
        return
    hooks = queries.webhooks_by_project(conn, everyone)
    if not hooks:
        return
    now = utcnow()
    rows = [
        _delivery(hook, event, now)
        for event, projects in events
        for project in sorted(projects)
        for hook in hooks.get(project, [])
    ]
    if rows:
        queries.insert_deliveries(conn, rows)


def _delivery(hook: str, event: dict[str, Any], now: Any) -> dict[str, Any]:
    return {
        "webhook_id": hook,
        "event_id": event["id"],
        "event_type": event["type"],
        "payload": orjson.dumps(event).decode(),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


# ---- registration ------------------------------------------------------------------------------


def on_project_deleted(conn: Connection, project_id: str) -> None:
    """A deleted project receives nothing more: its webhooks (and their outbox rows) go."""
    queries.delete_project_webhooks(conn, project_id)


def seal_clear_secrets(db: Database, box: SecretBox) -> int:
    """Seal the secrets stored in clear before sealing existed (at start-up); the number sealed."""
    with db.read() as conn:
        rows = queries.webhook_secrets(conn)
    clear = [(hook_id, secret) for hook_id, secret in rows if not is_sealed(secret)]
    with db.write() as conn:
        for hook_id, secret in clear:
            # Compare-and-set: another node starting at once may have sealed it already.
            queries.replace_secret(conn, hook_id, secret, box.seal(secret, hook_id))
    return len(clear)
