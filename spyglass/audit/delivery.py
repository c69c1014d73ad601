"""Delivers the webhook outbox: signed JSON POSTs, in order per webhook, retried with backoff.

Each webhook's deliveries go out oldest first, one at a time: only the head of its queue is
attempted. A failed head (no 2xx answer within the timeout) is retried after
`webhook_retry_seconds * 2**(attempts - 1)` (at most an hour); after `webhook_max_attempts`
failures it becomes a dead letter (status `dead`, kept with its last error, listed by
`GET /v2/webhooks/{id}/deliveries`) and the next delivery goes. A delivered row is deleted.

An attempt first claims its row by moving the next attempt time forward (compare-and-set), so that
several server processes never send the same delivery at once; a process that dies mid-attempt
leaves a claim that expires after LEASE.

The server sends with `guarded`: a webhook URL is chosen by any project, so, as for web-download,
the host is resolved just before connecting and the connection goes to that checked address only
(no DNS rebinding); loopback, private, link-local, ... addresses are refused unless they lie in
`web_download_allowed_networks`. A refused address is a failed attempt, whose error the project sees.
"""

from __future__ import annotations

import functools
import http.client
import logging
import socket
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from spyglass.audit import queries
from spyglass.audit.outbox import DEAD, PENDING, sign
from spyglass.audit.queries import DueDelivery
from spyglass.db.engine import Database
from spyglass.egress import AddressPolicy, OutboundError
from spyglass.secret_box import SecretBox, SecretKeyError
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
TIMEOUT_SECONDS = 10
MAX_DELAY = timedelta(hours=1)
ERROR_MAX = 500

# url, body, headers -> None; raises on failure (an OSError, HTTPException or ValueError).
Sender = Callable[[str, bytes, dict[str, str]], None]
FAILURES = (OSError, HTTPException, ValueError)


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 8
    first_delay_seconds: int = 5

    def delay(self, attempts: int) -> timedelta:
        return min(MAX_DELAY, timedelta(seconds=self.first_delay_seconds * 2 ** (attempts - 1)))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect answer is then an HTTPError: the delivery failed


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """Send one delivery; only a 2xx answer counts (urllib raises HTTPError for the others)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def guarded(policy: AddressPolicy) -> Sender:
    """A sender that connects only to an address the policy permits, checked just before connecting."""

    def send(url: str, body: bytes, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        host, https = parts.hostname or "", parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        try:
            address = policy.choose(host, (str(info[4][0]) for info in infos))
        except OutboundError as exc:
            raise ValueError(f"refused by the address policy: {exc}") from exc
        connection = (
            http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
            if https
            else http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        )
        # Host header, SNI and certificate check keep the name; the socket goes to the checked address.
        setattr(connection, "_create_connection", functools.partial(_connect_to, address))  # noqa: B010
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", target, body, headers)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise HTTPException(f"HTTP {response.status} {response.reason}")

    return send


def _connect_to(
    address: str, where: tuple[str, int], timeout: float | None = None, source: Any = None
) -> socket.socket:
    return socket.create_connection((address, where[1]), timeout, source)


def deliver_due(
    db: Database, box: SecretBox, retry: Retry, send: Sender = post, now: datetime | None = None
) -> int:
    """Attempt the head delivery of every webhook whose head is due; the number delivered."""
    now = now or utcnow()
    return sum(_attempt(db, box, retry, send, head, now) for head in _due_heads(db, now))


def _due_heads(db: Database, now: datetime) -> list[DueDelivery]:
    with db.read() as conn:
        return queries.due_heads(conn, PENDING, now)


def _attempt(
    db: Database, box: SecretBox, retry: Retry, send: Sender, head: DueDelivery, now: datetime
) -> bool:
    if not _claim(db, head, now):
        return False
    body = head.payload.encode()
    try:
        secret = box.open(head.secret, head.webhook_id)
    except SecretKeyError as exc:
        # Never sent unsigned: the attempt fails (the operator sees it logged, the project in
        # last_error) until the node has the key the secret was sealed under.
        log.error("webhook delivery %s cannot be signed: %s", head.id, exc)
        _failed(db, retry, head, "the webhook's secret cannot be opened on this server", now)
        return False
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "spyglass-webhooks",
        "X-Spyglass-Event": head.event_type,
        "X-Spyglass-Delivery": str(head.id),
        "X-Spyglass-Signature": sign(secret, body),
    }
    try:
        send(head.url, body, headers)
    except FAILURES as exc:
        _failed(db, retry, head, f"{type(exc).__name__}: {exc}"[:ERROR_MAX], now)
        return False
    with db.write() as conn:
        queries.delete_delivery(conn, head.id)
    return True


def _claim(db: Database, head: DueDelivery, now: datetime) -> bool:
    with db.write() as conn:
        return queries.claim(conn, head, PENDING, now + LEASE)


def _failed(db: Database, retry: Retry, head: DueDelivery, error: str, now: datetime) -> None:
    attempts = head.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if attempts >= retry.max_attempts:
        values["status"] = DEAD
        log.warning("webhook delivery %s is a dead letter after %d attempts: %s", head.id, attempts, error)
    else:
        values["next_attempt_at"] = now + retry.delay(attempts)
    with db.write() as conn:
        queries.update_delivery(conn, head.id, **values)


def delivery_round(db: Database, settings: Settings, send: Sender | None = None) -> Callable[[], int]:
    """One round of the server's deliveries, to run on a schedule (spyglass.background)."""
    send = send or guarded(AddressPolicy.of(settings))
    box = SecretBox.of(settings)
    retry = Retry(settings.webhook_max_attempts, settings.webhook_retry_seconds)
    return functools.partial(deliver_due, db, box, retry, send)
