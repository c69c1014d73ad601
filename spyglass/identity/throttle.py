"""Throttling failed password logins, counted in the database.

Two limits over a sliding window: failures naming one user from one source address (strict), and
failures from one address whatever user they name (looser; it stops one address spraying many
names). Neither counts a user's failures across all addresses: an attacker hammering alice's name
from elsewhere must never lock alice out of her own address. A success clears that user's failures
from that address. Throttled attempts are refused before the password is checked and are not
counted, so the table holds at most a limit's worth of rows per address and window.

The counters are rows in the database, not process memory, so every worker process and every
node on the same PostgreSQL counts the same failures; an attacker gains nothing by spreading
attempts over a load balancer.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.errors import Throttled
from spyglass.identity import token_queries
from spyglass.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginLimits:
    window_seconds: int = 300
    per_user_address: int = 5
    per_address: int = 50


@dataclass(frozen=True)
class Attempt:
    """A password login: where it comes from and the limits it is held to."""

    address: str
    limits: LoginLimits = LoginLimits()


def subject(user_ref: dict[str, Any], user: dict[str, Any] | None) -> str:
    """What failures count against: the user's id when it exists, else the reference as given.

    Missing users are counted as existing ones are, so a 429 tells nothing about existence."""
    if user is not None:
        named = f"id:{user['id']}"
    else:
        domain = user_ref.get("domain")
        named = f"ref:{user_ref.get('id')!r}:{user_ref.get('name')!r}:{domain!r}"
    return hashlib.sha256(named.encode()).hexdigest()


def _since(limits: LoginLimits, now: datetime) -> datetime:
    return now - timedelta(seconds=limits.window_seconds)


def check(conn: Connection, attempt: Attempt, key: str) -> None:
    """Refuse the attempt (Throttled) when its user and address, or its address, failed too often."""
    limits, now = attempt.limits, utcnow()
    for limit, who in ((limits.per_user_address, key), (limits.per_address, None)):
        if limit == 0:
            continue
        count, oldest = token_queries.failures(conn, _since(limits, now), attempt.address, who)
        if count >= limit and oldest is not None:
            wait = math.ceil((oldest - _since(limits, now)).total_seconds())
            raise Throttled(f"Too many failed logins; try again in {max(wait, 1)} seconds.", max(wait, 1))


def record_failure(db: Database, attempt: Attempt, key: str, named: str) -> None:
    """Count a failed login and log it (never the password). Old rows of every key go on the way."""
    now = utcnow()
    log.warning("failed login for user %s from %s", named, attempt.address)
    with db.write() as conn:
        token_queries.delete_failures_before(conn, _since(attempt.limits, now))
        token_queries.add_failure(conn, key, attempt.address, now)


def forget(conn: Connection, attempt: Attempt, key: str) -> None:
    """A success: this user's earlier failures from this address no longer count."""
    token_queries.forget_failures(conn, key, attempt.address)
