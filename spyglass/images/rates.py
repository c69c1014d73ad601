"""Per-project request rates for the expensive calls: image creates, uploads (and stages), imports
and member adds. Each kind has its own limit of requests per fixed window; past it the call is
refused with 429 and Retry-After (the seconds until the window ends), before any work is done.

The counters are rows of the database every API node already shares (rate_queries), so a project
gets the same rate whichever node it reaches, with nothing more to run; a Redis would save the
write but add a service to operate and to keep available. One UPSERT per limited request; nothing
at all while a kind's limit is 0 (the default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import RateLimited
from spyglass.images import rate_queries
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

IMAGE_CREATES = "image_creates"
UPLOADS = "uploads"
IMPORTS = "imports"
MEMBER_ADDS = "member_adds"
_NAMES = {
    IMAGE_CREATES: "image creates",
    UPLOADS: "uploads",
    IMPORTS: "imports",
    MEMBER_ADDS: "member additions",
}


@dataclass(frozen=True)
class Rate:
    limit: int
    window_seconds: int

    @classmethod
    def of(cls, settings: Settings, kind: str) -> Rate:
        return cls(getattr(settings, f"rate_limit_{kind}"), settings.rate_limit_window_seconds)


def _window_start(now: datetime, seconds: int) -> datetime:
    epoch = datetime(1970, 1, 1)
    elapsed = int((now - epoch).total_seconds())
    return epoch + timedelta(seconds=elapsed - elapsed % seconds)


def admit(db: Database, ctx: RequestContext, kind: str, rate: Rate) -> None:
    """Count the request against its project's rate; RateLimited once the window's limit is used."""
    if rate.limit == 0 or ctx.project_id is None:
        return
    now = utcnow()
    start = _window_start(now, rate.window_seconds)
    with db.write() as conn:
        count = rate_queries.count_request(conn, ctx.project_id, kind, start)
        if count == 1:
            rate_queries.forget_before(conn, ctx.project_id, kind, start)
    if count > rate.limit:
        end = start + timedelta(seconds=rate.window_seconds)
        wait = max(1, math.ceil((end - now).total_seconds()))
        raise RateLimited(
            f"Too many {_NAMES[kind]} from project {ctx.project_id}: at most {rate.limit} every "
            f"{rate.window_seconds} seconds; try again in {wait} seconds.",
            wait,
        )
