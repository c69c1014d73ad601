"""Quotas on the HTTP side: the deployment's quota rules for the service calls, `GET /v2/info/usage`
as Glance serves it, and the per-project request rates the expensive handlers are held to."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from spyglass.images import quotas, rates
from spyglass.web import JSONResponse, app_state, call, caller


def rules(request: Request) -> quotas.Quotas:
    return quotas.Quotas.of(app_state(request).settings)


async def admit(request: Request, kind: str) -> None:
    """Refuse (429) a request past its project's rate, before its body is read."""
    state = app_state(request)
    rate = rates.Rate.of(state.settings, kind)
    if rate.limit:
        await run_in_threadpool(rates.admit, state.db, caller(request), kind, rate)


async def usage(request: Request) -> Response:
    found = await call(request, quotas.usage_of, rules(request))
    return JSONResponse({"usage": {name: {"limit": u.limit, "usage": u.usage} for name, u in found.items()}})
