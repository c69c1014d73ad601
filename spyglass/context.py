"""Who is calling: the authenticated identity every service function receives, and the protocol
of what establishes it from a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    project_id: str | None
    roles: frozenset[str]
    user_name: str = ""
    project_name: str = ""
    domain_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        return "member" in self.roles or self.is_admin

    @property
    def can_read(self) -> bool:
        return bool(self.roles & {"reader", "member", "admin"})


class Authenticator(Protocol):
    """Turns an X-Auth-Token into the caller: the embedded identity service's implementation is
    spyglass.identity.authn; a validator for an external Keystone would be another.

    Called in a worker thread, so it may block. Raises spyglass.errors.Unauthorized for a token
    that is unknown, expired, revoked, or whose user or scope is disabled, and
    spyglass.errors.TryLater when it cannot tell (the identity service does not answer).
    `service_token` is the request's X-Service-Token, if any."""

    def authenticate(self, token: str, service_token: str | None = None) -> RequestContext: ...
