"""Who is calling: the authenticated identity every service function receives."""

from __future__ import annotations

from dataclasses import dataclass


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
