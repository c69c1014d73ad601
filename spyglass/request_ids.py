"""The ids of the request being served, on every log line written while it is served.

Each request gets Spyglass's own id (`req-<uuid4>`). A caller that sends a well-formed
`X-OpenStack-Request-ID` (Nova, Cinder and the clients do, with the id of the user's action) gives
the request its global id: the response answers with that id, so one action can be followed from
service to service, and every log line of the request names both ids. A malformed header is
ignored (it would reach the logs verbatim otherwise) and the response answers with the own id.

Glance 33 takes whatever the header holds, up to 64 characters, as its request id; Spyglass keeps
oslo.middleware's stricter form of the global id (`req-` and a lower-case UUID).

The ids live in a context variable set by the HTTP layer: worker threads (Starlette's threadpool
copies the context) and background tasks started by the request (asyncio copies it on creation)
log them too.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["LOG_FORMAT", "LogFilter", "RequestIds", "current", "log_config"]

_GLOBAL_FORM = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# What log lines show where a request has no id (start-up, the background schedule).
_NONE = "-"

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(global_request_id)s] %(message)s"


@dataclass(frozen=True)
class RequestIds:
    own: str
    global_id: str | None = None

    @classmethod
    def of(cls, header: str | None) -> RequestIds:
        """The ids of a request whose X-OpenStack-Request-ID header is `header` (or none)."""
        accepted = header if header is not None and _GLOBAL_FORM.fullmatch(header) else None
        return cls(f"req-{uuid.uuid4()}", accepted)

    @property
    def answered(self) -> str:
        """The id the response carries: the caller's global id when it sent one."""
        return self.global_id or self.own


current: ContextVar[RequestIds | None] = ContextVar("spyglass_request_ids", default=None)


class LogFilter(logging.Filter):
    """Adds `request_id` and `global_request_id` to every record (for LOG_FORMAT)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current.get()
        record.request_id = ids.own if ids is not None else _NONE
        record.global_request_id = (ids.global_id if ids is not None else None) or _NONE
        return True


def log_config(level: str) -> dict[str, Any]:
    """The logging configuration of `spyglass serve` (uvicorn's log_config): Spyglass's and
    uvicorn's loggers, one stderr handler, every line with the request's ids."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "ids",
        "filters": ["ids"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": LogFilter}},
        "formatters": {"ids": {"format": LOG_FORMAT}},
        "handlers": {"default": handler},
        "loggers": {
            "spyglass": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }
