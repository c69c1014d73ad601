"""The dashboard's session: a token of the identity service, sealed in a cookie, and its CSRF token.

The cookie holds the token sealed with the deployment's secret key (AES-GCM: unreadable and
unforgeable without it), `HttpOnly` and `SameSite=Strict`, `Secure` when the public URL is https.
Every form carries a CSRF token derived from the session's token, so a page of another site can
neither read it nor make one. The caller is then established by the same authenticator as the API's
X-Auth-Token, so the dashboard can never see or do more than the API lets that user.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from spyglass.context import Authenticator, RequestContext
from spyglass.errors import Unauthorized
from spyglass.secret_box import SecretBox, SecretKeyError, is_sealed
from spyglass.web import app_state

COOKIE = "spyglass_session"
# Before a session exists, the login form is tied to a random value in this cookie, so that another
# site cannot log a browser in to an account of its choosing (login CSRF).
LOGIN_COOKIE = "spyglass_login"
# The associated data the cookie is sealed under: a webhook secret cannot pass for a session.
_SEALED_AS = "dashboard-session"


@dataclass(frozen=True)
class Session:
    token: str
    ctx: RequestContext

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def csrf_token(token: str) -> str:
    return hmac.new(b"spyglass-dashboard-csrf", token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session: Session, given: Any) -> bool:
    return isinstance(given, str) and hmac.compare_digest(session.csrf, given)


def login_nonce(request: Request) -> str:
    """The browser's login nonce: the one it has, or a new one to set with `keep_login_nonce`."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def keep_login_nonce(request: Request, response: Response, nonce: str) -> None:
    secure = app_state(request).settings.base_url.startswith("https:")
    response.set_cookie(
        LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=secure, path="/dashboard"
    )


def login_csrf_ok(request: Request, given: Any) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE)
    return bool(nonce) and isinstance(given, str) and hmac.compare_digest(csrf_token(nonce or ""), given)


def _box(request: Request) -> SecretBox:
    return app_state(request).secret_box


def _authenticator(request: Request) -> Authenticator:
    found: Authenticator = request.app.state.authenticator
    return found


async def current(request: Request) -> Session | None:
    """The session of the request's cookie, or None (no cookie, a forged one, a revoked token)."""
    sealed = request.cookies.get(COOKIE)
    if not sealed or not is_sealed(sealed):  # a bare token in the cookie is not a session
        return None
    try:
        token = _box(request).open(sealed, _SEALED_AS)
    except (SecretKeyError, ValueError):
        return None
    try:
        ctx = await run_in_threadpool(_authenticator(request).authenticate, token)
    except Unauthorized:
        return None
    return Session(token, ctx)


def keep(request: Request, response: Response, token: str) -> None:
    secure = app_state(request).settings.base_url.startswith("https:")
    response.set_cookie(
        COOKIE,
        _box(request).seal(token, _SEALED_AS),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/dashboard",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/dashboard")
