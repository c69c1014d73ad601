"""Webhooks: URLs a project registers (`/v2/webhooks`) to receive the sharing events that concern it.

A project registers a URL and a secret; the events that concern the project are queued for it in
the outbox (spyglass.audit.outbox) and delivered signed under that secret (spyglass.audit.delivery),
retried with backoff, the ones that keep failing kept as dead letters.
"""

from __future__ import annotations

import secrets
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from spyglass.audit import queries as audit_queries
from spyglass.audit.outbox import PENDING
from spyglass.audit.queries import Delivery
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.egress import AddressPolicy, OutboundError, valid_host
from spyglass.errors import Invalid, NotFound, TooLarge
from spyglass.images.policy import Action, authorize
from spyglass.secret_box import SecretBox
from spyglass.sharing import queries
from spyglass.sharing.queries import Webhook
from spyglass.timeutil import isotime, utcnow

WEBHOOKS_PER_PROJECT = 10
URL_MAX = 2048
SECRET_MIN, SECRET_MAX = 16, 255


def _project(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise Invalid("Webhooks belong to a project: use a project-scoped token.")
    return ctx.project_id


def _parse(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict) or set(body) - {"url", "secret"}:
        raise Invalid('The body must be a JSON object {"url": ..., "secret": ...} (secret optional).')
    url, secret = body.get("url"), body.get("secret")
    if not isinstance(url, str) or len(url) > URL_MAX or "\x00" in url:
        raise Invalid(f"url must be an http or https URL of at most {URL_MAX} characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"url must be an http or https URL of at most {URL_MAX} characters.")
    if not valid_host(parts.hostname):
        raise Invalid(f"url: {parts.hostname} is not a valid host name.")
    if secret is None:
        secret = secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX or "\x00" in secret:
        raise Invalid(f"secret must be a string of {SECRET_MIN} to {SECRET_MAX} characters.")
    return url, secret


def _check_address(url: str, policy: AddressPolicy) -> None:
    """Refuse at once a URL whose host is an address deliveries may not reach (a numeric host, in
    any form the resolver reads as one). Names are checked at each delivery (spyglass.webhook_worker)."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except OSError:
        return
    try:
        policy.choose(host, (str(info[4][0]) for info in infos))
    except OutboundError as exc:
        raise Invalid(f"url: {exc}".replace("web-download", "a webhook")) from exc


def create_webhook(
    db: Database, ctx: RequestContext, body: Any, box: SecretBox, policy: AddressPolicy | None = None
) -> dict[str, Any]:
    """Register a URL; the answer is the only one that shows the secret."""
    authorize(ctx, Action.MANAGE_WEBHOOKS)
    project = _project(ctx)
    url, secret = _parse(body)
    _check_address(url, policy or AddressPolicy())
    with db.write() as conn:
        if queries.count_webhooks(conn, project) >= WEBHOOKS_PER_PROJECT:
            raise TooLarge(f"A project may register at most {WEBHOOKS_PER_PROJECT} webhooks.")
        hook_id = str(uuid.uuid4())
        hook = Webhook(hook_id, project, url, box.seal(secret, hook_id), ctx.user_id, utcnow())
        queries.insert_webhook(conn, hook)
    return {**document(hook), "secret": secret}


def list_webhooks(db: Database, ctx: RequestContext) -> list[dict[str, Any]]:
    authorize(ctx, Action.GET_WEBHOOKS)
    project = _project(ctx)
    with db.read() as conn:
        hooks = queries.webhooks_of(conn, project)
    return [document(h) for h in hooks]


def _own_webhook(conn: Connection, project: str, webhook_id: str) -> None:
    try:
        uuid.UUID(webhook_id)
    except ValueError:
        raise NotFound(f"No webhook found with ID {webhook_id}") from None
    if not queries.owns_webhook(conn, project, webhook_id):
        raise NotFound(f"No webhook found with ID {webhook_id}")


def delete_webhook(db: Database, ctx: RequestContext, webhook_id: str) -> None:
    """Unregister a URL; its undelivered and dead deliveries go with it."""
    authorize(ctx, Action.MANAGE_WEBHOOKS)
    project = _project(ctx)
    with db.write() as conn:
        _own_webhook(conn, project, webhook_id)
        queries.delete_webhook(conn, webhook_id)


def list_deliveries(db: Database, ctx: RequestContext, webhook_id: str) -> list[dict[str, Any]]:
    """The deliveries not yet made (pending) and the dead letters of one webhook, oldest first."""
    authorize(ctx, Action.GET_WEBHOOKS)
    project = _project(ctx)
    with db.read() as conn:
        _own_webhook(conn, project, webhook_id)
        deliveries = audit_queries.deliveries_of(conn, webhook_id)
    return [delivery_document(d) for d in deliveries]


def document(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "project_id": hook.project_id,
        "url": hook.url,
        "created_at": isotime(hook.created_at),
    }


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": isotime(delivery.next_attempt_at) if delivery.status == PENDING else None,
        "last_error": delivery.last_error,
        "created_at": isotime(delivery.created_at),
    }
