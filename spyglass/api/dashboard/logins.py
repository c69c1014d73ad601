"""Who the dashboard logs people in with: the identity service Spyglass uses, behind one small
interface, chosen once when the application is wired (`for_settings`).

- `EmbeddedLogins`: this service's own identity (the same token issuing as POST /identity/v3/auth/tokens,
  with its password-check slots and failed-login throttle).
- `KeystoneLogins`: the external Keystone of `identity = "keystone"` (spyglass.identity.keystone_login):
  the user's password for a project-scoped token, `GET /v3/auth/projects` for the switcher, the token
  method to switch, and the token revoking itself at logout.

Either way the token then goes through the API's own authenticator on every page
(spyglass.api.dashboard.session), so a dashboard user can do no more than with the API.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from spyglass.api.dashboard.session import Session
from spyglass.api.identity import login_attempt
from spyglass.errors import Unauthorized
from spyglass.identity import directory, token_info, tokens
from spyglass.identity.keystone import KeystoneAuthenticator, KeystoneUnavailable
from spyglass.identity.keystone_login import Credentials, KeystoneLogins, UserProject
from spyglass.settings import Settings
from spyglass.web import app_state

log = logging.getLogger(__name__)


class Logins(Protocol):
    async def log_in(self, request: Request, given: Credentials) -> str:
        """A new project-scoped token; Unauthorized for wrong credentials, whatever was wrong."""

    async def switch(self, request: Request, session: Session, project_id: str) -> str:
        """A token of the same user for another of its projects."""

    async def projects(self, request: Request, session: Session) -> list[UserProject]:
        """The projects the user may switch to."""

    async def log_out(self, request: Request, session: Session) -> None:
        """Revoke the session's token."""

    async def project_id_named(self, request: Request, name: str, domain: str) -> str | None:
        """The id of the project `name` in domain `domain` (sharing by name), or None."""


def for_settings(settings: Settings, authenticator: Any) -> Logins:
    if settings.identity == "keystone":
        forget = authenticator if isinstance(authenticator, KeystoneAuthenticator) else None
        return KeystoneBackend(KeystoneLogins(settings.keystone_authtoken), forget)
    return EmbeddedLogins()


def of(request: Request) -> Logins:
    found: Logins = request.app.state.dashboard_logins
    return found


class EmbeddedLogins:
    async def log_in(self, request: Request, given: Credentials) -> str:
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": given.user_name,
                        "domain": {"name": given.user_domain},
                        "password": given.password,
                    }
                },
            },
            "scope": {"project": {"name": given.project_name, "domain": {"name": given.project_domain}}},
        }
        # Password checks wait for a slot, as on the identity API: the login form is no way around it.
        async with app_state(request).password_checks.slot():
            return await self._issue(request, auth)

    async def switch(self, request: Request, session: Session, project_id: str) -> str:
        auth = {
            "identity": {"methods": ["token"], "token": {"id": session.token}},
            "scope": {"project": {"id": project_id}},
        }
        return await self._issue(request, auth)

    async def _issue(self, request: Request, auth: dict[str, Any]) -> str:
        state = app_state(request)
        secret, _info = await run_in_threadpool(
            tokens.issue_token,
            state.db,
            {"auth": auth},
            state.settings.token_ttl_seconds,
            login_attempt(request),
        )
        return secret

    async def projects(self, request: Request, session: Session) -> list[UserProject]:
        rows = await run_in_threadpool(directory.auth_projects, app_state(request).db, session.ctx)
        return [UserProject(row["id"], row["name"]) for row in rows]

    async def log_out(self, request: Request, session: Session) -> None:
        await run_in_threadpool(token_info.revoke_token, app_state(request).db, session.token)

    async def project_id_named(self, request: Request, name: str, domain: str) -> str | None:
        return await run_in_threadpool(directory.project_id_named, app_state(request).db, name, domain)


class KeystoneBackend:
    """The external Keystone; `authenticator` (the API's) forgets a token revoked at logout."""

    def __init__(self, keystone: KeystoneLogins, authenticator: KeystoneAuthenticator | None) -> None:
        self.keystone = keystone
        self.authenticator = authenticator

    async def log_in(self, request: Request, given: Credentials) -> str:
        # The embedded identity's slot and failed-login throttle: the form is no faster way to
        # guess Keystone passwords than the identity API is to guess embedded ones.
        async with app_state(request).password_checks.slot():
            return await run_in_threadpool(
                self.keystone.throttled_login, app_state(request).db, login_attempt(request), given
            )

    async def switch(self, request: Request, session: Session, project_id: str) -> str:
        return await run_in_threadpool(self.keystone.rescope, session.token, project_id)

    async def projects(self, request: Request, session: Session) -> list[UserProject]:
        try:
            return await run_in_threadpool(self.keystone.projects, session.token)
        except (KeystoneUnavailable, Unauthorized) as exc:
            # Pages still work on a token validated before Keystone went away (or revoked it within
            # token_cache_time, as for the API): offer no switch then.
            log.warning("No project list for the dashboard: %s", getattr(exc, "detail", exc.message))
            return [UserProject(session.ctx.project_id or "", session.ctx.project_name)]

    async def log_out(self, request: Request, session: Session) -> None:
        # Forgotten here whatever Keystone answers: this node no longer takes the token from its
        # cache, and the caller clears the cookie even when the revoke itself failed.
        try:
            await run_in_threadpool(self.keystone.revoke, session.token)
        finally:
            if self.authenticator is not None:
                self.authenticator.forget(session.token)

    async def project_id_named(self, request: Request, name: str, domain: str) -> str | None:
        reader = app_state(request).keystone
        if reader is None:
            return None
        return await run_in_threadpool(reader.project_id_named, name, domain)
