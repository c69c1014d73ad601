"""Request header limits: 431 Request Header Fields Too Large before any handler runs.

uvicorn's httptools parser sets no limit of its own. The limits are those of the deployment's
settings: how many headers, the longest one (its name and value, as Glance's `max_header_line`
counts it) and all of them together.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.api.errors import error_response
from spyglass.settings import Settings

STATUS = 431


def refusal(headers: list[tuple[bytes, bytes]], settings: Settings) -> str | None:
    """Why these headers are refused, or None when they are within the limits."""
    if len(headers) > settings.max_request_headers:
        return f"The request has {len(headers)} headers; at most {settings.max_request_headers} are accepted."
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > settings.max_request_header_line_bytes:
            shown = name[:64].decode("latin-1")
            limit = settings.max_request_header_line_bytes
            return f"The request header {shown} is larger than {limit} bytes."
        total += size
    if total > settings.max_request_header_bytes:
        return f"The request headers are larger than {settings.max_request_header_bytes} bytes together."
    return None


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reason = refusal(scope["headers"], self.settings)
            if reason is not None:
                response = error_response(Request(scope), STATUS, reason, {"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
