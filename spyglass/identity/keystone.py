"""An existing Keystone as the API's authenticator (see spyglass.context.Authenticator), with
`identity = "keystone"`: what keystonemiddleware's auth_token does for Glance.

Every X-Auth-Token is validated with `GET /v3/auth/tokens` (X-Subject-Token) through a keystoneauth1
session of the service user, and the answer is kept for `token_cache_time` seconds (never past the
token's expiry) in a bounded cache. Within that time a token revoked in Keystone still works: the
price of not asking Keystone on every request, as with keystonemiddleware's cache.

Keystone unreachable, slow or failing: a cached token keeps working; any other gets
`KeystoneUnavailable` (503), never a pass. A service token (X-Service-Token) carrying one of
`service_token_roles` lets an expired user token through (validated with allow_expired=1).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from spyglass.context import RequestContext
from spyglass.errors import Unauthorized, Unavailable
from spyglass.keystone_settings import KeystoneAuthtoken

log = logging.getLogger(__name__)

NOT_AUTHENTICATED = "The request you have made requires authentication."
UNAVAILABLE = "The identity service (Keystone) cannot be reached to validate the token; try again later."
RETRY_AFTER_SECONDS = 5


class KeystoneUnavailable(Unavailable):
    """Keystone did not answer in time, or answered with an error: the token is neither good nor bad."""

    def __init__(self, reason: str, message: str = UNAVAILABLE) -> None:
        super().__init__(message, RETRY_AFTER_SECONDS)
        self.detail = reason


def v3_url(auth_url: str) -> str:
    """The Identity v3 root from auth_url, which operators write with or without the /v3."""
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def service_session(options: KeystoneAuthtoken, *, system_scope: bool = False) -> ks_session.Session:
    """The service user's keystoneauth1 session: it gets, caches and renews its own token.

    Scoped to the service project (validating tokens needs the `service` role there), or with
    `system_scope` to the whole system (reading projects needs `reader` on the system: Keystone's
    default policy gives a project-scoped token no project but its own)."""
    auth = v3.Password(
        auth_url=v3_url(options.auth_url),
        username=options.username,
        password=options.password,
        user_domain_name=options.user_domain_name,
        system_scope="all" if system_scope else None,
        project_name=None if system_scope else options.project_name,
        project_domain_name=None if system_scope else options.project_domain_name,
    )
    return ks_session.Session(auth=auth, timeout=options.http_connect_timeout)


@dataclass(frozen=True)
class ValidatedToken:
    context: RequestContext
    expires_at: float
    cached_until: float


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _context(token: dict[str, Any]) -> RequestContext:
    project = token.get("project") or {}
    domain = token.get("domain") or {}
    user = token.get("user") or {}
    return RequestContext(
        user_id=user.get("id", ""),
        user_name=user.get("name", ""),
        project_id=project.get("id"),
        project_name=project.get("name", ""),
        domain_id=domain.get("id"),
        # Keystone has already expanded implied roles into this list.
        roles=frozenset(role["name"] for role in token.get("roles") or ()),
    )


class TokenCache:
    """Validated tokens by their SHA-256, least recently used first out past `size`."""

    def __init__(self, size: int, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, ValidatedToken] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> ValidatedToken | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.cached_until <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: ValidatedToken) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class KeystoneAuthenticator:
    """Validates tokens against the configured Keystone, as keystonemiddleware's auth_token does."""

    def __init__(
        self,
        options: KeystoneAuthtoken,
        session: ks_session.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.session = session or service_session(options)
        self.clock = clock
        self.cache = TokenCache(options.token_cache_size, clock)
        self.tokens_url = v3_url(options.auth_url) + "/auth/tokens"

    def remembered(self, token: str) -> RequestContext | None:
        """The caller of a token validated within token_cache_time, without blocking; else None."""
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self.cache.get(key)
        return cached.context if cached is not None and cached.expires_at > self.clock() else None

    def forget(self, token: str) -> None:
        """Trust this token no longer, cached or not: it was revoked through this node (the
        dashboard's logout). Other nodes keep their entry up to token_cache_time, as for any revoke."""
        key = hashlib.sha256(token.encode()).hexdigest()
        self.cache.discard(key)
        self.cache.discard("expired-ok:" + key)

    def authenticate(self, token: str, service_token: str | None = None) -> RequestContext:
        allow_expired = False
        if service_token:
            allow_expired = self._service_token_allows_expired(service_token)
        return self._validate(token, allow_expired=allow_expired).context

    def _service_token_allows_expired(self, service_token: str) -> bool:
        service = self._validate(service_token, allow_expired=False).context
        if service.roles & set(self.options.service_token_roles):
            return True
        if self.options.service_token_roles_required:
            log.warning(
                "A service token without any of the roles %s was refused",
                self.options.service_token_roles,
            )
            raise Unauthorized(NOT_AUTHENTICATED)
        log.warning(
            "A service token without any of the roles %s was accepted as a plain token "
            "(service_token_roles_required is off)",
            self.options.service_token_roles,
        )
        return False

    def _validate(self, token: str, *, allow_expired: bool) -> ValidatedToken:
        key = ("expired-ok:" if allow_expired else "") + hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        cached = self.cache.get(key)
        if cached is not None and (allow_expired or cached.expires_at > now):
            return cached
        validated = self._ask_keystone(token, allow_expired=allow_expired, now=now)
        if self.options.token_cache_time > 0:
            self.cache.put(key, validated)
        return validated

    def _ask_keystone(self, token: str, *, allow_expired: bool, now: float) -> ValidatedToken:
        try:
            response = self.session.get(
                self.tokens_url,
                headers={"X-Subject-Token": token},
                params={"allow_expired": 1} if allow_expired else None,
                raise_exc=False,
                authenticated=True,
            )
        except ks_exceptions.ClientException as exc:
            # Connection refused or timed out, or the service user's own login failed.
            log.warning("Keystone at %s cannot validate tokens: %s", self.options.auth_url, exc)
            raise KeystoneUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise Unauthorized(NOT_AUTHENTICATED)
        if response.status_code != 200:
            log.warning("Keystone answered %s to a token validation", response.status_code)
            raise KeystoneUnavailable(f"Keystone answered {response.status_code}")
        body = response.json()["token"]
        expires_at = _epoch(body["expires_at"])
        cached_until = now + self.options.token_cache_time
        if not allow_expired:
            cached_until = min(cached_until, expires_at)
        return ValidatedToken(_context(body), expires_at, cached_until)
