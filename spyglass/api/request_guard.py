"""What every request must pass before any handler (or the token check) runs.

- Header limits: 431 Request Header Fields Too Large. uvicorn's httptools parser sets no limit of
  its own; the limits are the deployment's settings: how many headers, the longest one (its name and
  value, as Glance's `max_header_line` counts it) and all of them together.
- No NUL character in the path (404: nothing is named with one, as for any malformed id) or the
  query string (400), whatever the resource, so the answer tells nothing about it: PostgreSQL
  cannot compare text with NUL and would fail the request (SQLite would store it).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.api.errors import error_response
from spyglass.settings import Settings

STATUS = 431
NUL_MESSAGE = "Strings must not contain NUL characters."


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


def nul_refusal(scope: Scope) -> tuple[int, str] | None:
    """404 for a NUL in the path, 400 for one in the query string; None when there is none."""
    if "\x00" in scope["path"]:
        return 404, "The resource could not be found."
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return 400, NUL_MESSAGE
    return None


class RequestGuardMiddleware:
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
            refused = nul_refusal(scope)
            if refused is not None:
                await error_response(Request(scope), *refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)
