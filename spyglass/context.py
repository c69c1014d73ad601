"""Who is calling: the authenticated identity every service function receives, and the protocol
of what establishes it from a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    project_id: str | None
    roles: frozenset[str]
    user_name: str = ""
    project_name: str = ""
    domain_id: str | None = None
    # The roles of the X-Service-Token that came with the user's token (Nova and Cinder send one):
    # the service acting for the user. Only the rules that say so look at them, as Glance's.
    service_roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        return "member" in self.roles or self.is_admin

    @property
    def can_read(self) -> bool:
        return bool(self.roles & {"reader", "member", "admin"})

    @property
    def is_service(self) -> bool:
        """Glance's `service_api` rule: the token's own roles include service (or admin)."""
        return "service" in self.roles or self.is_admin


class Authenticator(Protocol):
    """Turns an X-Auth-Token into the caller: the embedded identity service's implementation is
    spyglass.identity.authn; a validator for an external Keystone would be another.

    Called in a worker thread, so it may block. Raises spyglass.errors.Unauthorized for a token
    that is unknown, expired, revoked, or whose user or scope is disabled, and
    spyglass.errors.TryLater when it cannot tell (the identity service does not answer).
    `service_token` is the request's X-Service-Token, if any."""

    def authenticate(self, token: str, service_token: str | None = None) -> RequestContext: ...


@runtime_checkable
class RememberingAuthenticator(Authenticator, Protocol):
    """An authenticator that can answer some tokens from memory, without blocking: the API asks it
    on the event loop first and runs `authenticate` in a worker thread only when it says None."""

    def remembered(self, token: str) -> RequestContext | None: ...
