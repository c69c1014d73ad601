"""Identity API v3 administrative resources: domains, projects, users, roles, assignments."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
