"""A person's own tokens at the external Keystone (`identity = "keystone"`): how the dashboard logs
a user in with a password, lists the projects the user may switch to, rescopes to one of them and
revokes the token at logout. Everything goes through keystoneauth1 to the Keystone at `auth_url`.

Password logins are held to the same failed-login throttle as the embedded identity's
(spyglass.identity.throttle, counted in this service's database): Keystone sees every dashboard
login come from this service's address, so without it the login form would be a way to guess
Keystone passwords as fast as Keystone answers.

Keystone refusing the credentials (any 4xx) is one generic refusal, as the embedded identity gives,
so that a login form reveals nothing about which part was wrong. Keystone unreachable or failing is
`KeystoneUnavailable` (503) with a message for the person at the login form.

The project list is asked of Keystone with the user's own token (`GET /v3/auth/projects`) and kept
for `token_cache_time` seconds per token, as validations are (spyglass.identity.keystone).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from spyglass.db.engine import Database
from spyglass.errors import Unauthorized
from spyglass.identity import throttle
from spyglass.identity.keystone import NOT_AUTHENTICATED, KeystoneUnavailable, v3_url
from spyglass.identity.throttle import Attempt
from spyglass.keystone_settings import KeystoneAuthtoken

log = logging.getLogger(__name__)

LOGIN_UNAVAILABLE = "The identity service (Keystone) cannot be reached to log you in; try again later."
# Project lists kept at most (one per token that rendered a page lately).
PROJECT_LISTS_KEPT = 1000


@dataclass(frozen=True)
class Credentials:
    """What a login form gives: a user of a domain, and the project (of its domain) to work in."""

    user_name: str
    password: str
    user_domain: str
    project_name: str
    project_domain: str


@dataclass(frozen=True)
class UserProject:
    """One project a user may switch to."""

    id: str
    name: str


class KeystoneLogins:
    """Users' tokens at the Keystone of `options.auth_url`, with no service credentials involved."""

    def __init__(self, options: KeystoneAuthtoken, clock: Callable[[], float] = time.time) -> None:
        self.base = v3_url(options.auth_url)
        self.session = ks_session.Session(timeout=options.http_connect_timeout)
        self.keep_seconds = options.token_cache_time
        self.clock = clock
        self._lists: OrderedDict[str, tuple[float, list[UserProject]]] = OrderedDict()
        self._lock = threading.Lock()

    def password_login(self, given: Credentials) -> str:
        """A project-scoped token for the user's password (blocking)."""
        auth = v3.Password(
            auth_url=self.base,
            username=given.user_name,
            password=given.password,
            user_domain_name=given.user_domain,
            project_name=given.project_name,
            project_domain_name=given.project_domain,
        )
        return self._token(auth)

    def throttled_login(self, db: Database, attempt: Attempt, given: Credentials) -> str:
        """`password_login` held to the failed-login throttle: refused (Throttled, 429) while this
        user name from this address, or this address, has failed too often, before Keystone is
        asked; a refusal counts as a failure (whether the password or the project was wrong: Keystone
        does not say), a token clears this user's failures from this address."""
        key = throttle.subject({"name": given.user_name, "domain": {"name": given.user_domain}}, None)
        with db.read() as conn:
            throttle.check(conn, attempt, key)
        try:
            token = self.password_login(given)
        except Unauthorized:
            throttle.record_failure(db, attempt, key, repr(given.user_name)[:80])
            raise
        with db.write() as conn:
            throttle.forget(conn, attempt, key)
        return token

    def rescope(self, token: str, project_id: str) -> str:
        """A token of the same user scoped to another of its projects (the token method)."""
        return self._token(v3.Token(auth_url=self.base, token=token, project_id=project_id))

    def _token(self, auth: v3.Password | v3.Token) -> str:
        try:
            access = auth.get_auth_ref(self.session)
        except ks_exceptions.HttpError as exc:
            if exc.http_status is not None and 400 <= exc.http_status < 500:
                raise Unauthorized(NOT_AUTHENTICATED) from exc
            raise self._unavailable("a login", exc) from exc
        except ks_exceptions.ClientException as exc:
            raise self._unavailable("a login", exc) from exc
        if not access.auth_token:
            raise KeystoneUnavailable("Keystone answered a login without a token", LOGIN_UNAVAILABLE)
        return str(access.auth_token)

    def projects(self, token: str) -> list[UserProject]:
        """The enabled projects the token's user may scope to (`GET /v3/auth/projects`)."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self._lock:
            kept = self._lists.get(key)
            if kept is not None and kept[0] > now:
                return kept[1]
        listed = self._call("GET", "/auth/projects", token)
        found = sorted(
            (UserProject(p["id"], p["name"]) for p in listed["projects"] if p.get("enabled", True)),
            key=lambda p: p.name,
        )
        if self.keep_seconds > 0:
            with self._lock:
                self._lists[key] = (now + self.keep_seconds, found)
                while len(self._lists) > PROJECT_LISTS_KEPT:
                    self._lists.popitem(last=False)
        return found

    def revoke(self, token: str) -> None:
        """The token revokes itself (`DELETE /v3/auth/tokens`); one already gone is no error."""
        with self._lock:
            self._lists.pop(hashlib.sha256(token.encode()).hexdigest(), None)
        try:
            self._call("DELETE", "/auth/tokens", token, {"X-Subject-Token": token})
        except Unauthorized:
            return  # expired or revoked already: nothing left to revoke

    def _call(self, method: str, path: str, token: str, headers: dict[str, str] | None = None) -> Any:
        try:
            response = self.session.request(
                self.base + path,
                method,
                headers={"X-Auth-Token": token, **(headers or {})},
                raise_exc=False,
                authenticated=False,
            )
        except ks_exceptions.ClientException as exc:
            raise self._unavailable(f"{method} {path}", exc) from exc
        if response.status_code in (401, 404):
            raise Unauthorized(NOT_AUTHENTICATED)
        if response.status_code >= 300:
            reason = f"Keystone answered {response.status_code} to {method} {path}"
            raise KeystoneUnavailable(reason, LOGIN_UNAVAILABLE)
        return response.json() if response.content else {}

    def _unavailable(self, what: str, exc: Exception) -> KeystoneUnavailable:
        log.warning("Keystone at %s could not answer %s: %s", self.base, what, exc)
        return KeystoneUnavailable(f"{type(exc).__name__}: {exc}", LOGIN_UNAVAILABLE)
