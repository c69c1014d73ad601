"""The services and the region of the embedded identity's catalog, read-only as Keystone shows them.

Spyglass offers two services, identity and image, in the one region of the `region` setting. Their
ids are fixed (not derived from any URL), so that every API node of a deployment names the same
service: unified limits (spyglass.identity.limits) refer to the image service by this id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from spyglass.context import RequestContext
from spyglass.errors import NotFound
from spyglass.identity.inputs import Row
from spyglass.identity.policy import Action, authorize


@dataclass(frozen=True)
class Service:
    type: str
    name: str

    @property
    def id(self) -> str:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"spyglass:service:{self.type}").hex

    def row(self) -> Row:
        return {"id": self.id, "type": self.type, "name": self.name, "enabled": True, "description": ""}


IDENTITY = Service("identity", "keystone")
IMAGE = Service("image", "glance")
SERVICES = (IDENTITY, IMAGE)


def service_ids() -> frozenset[str]:
    return frozenset(s.id for s in SERVICES)


def list_services(ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    """Keystone's filters: `type` and `name`, exact."""
    authorize(ctx, Action.LIST_SERVICES)
    rows = [s.row() for s in SERVICES]
    return [r for r in rows if all(r[k] == params[k] for k in ("type", "name") if k in params)]


def get_service(ctx: RequestContext, service_id: str) -> Row:
    authorize(ctx, Action.GET_SERVICE)
    for service in SERVICES:
        if service.id == service_id:
            return service.row()
    raise NotFound(f"Could not find service: {service_id}.")


def region_row(region: str) -> Row:
    return {"id": region, "description": "", "parent_region_id": None}


def list_regions(ctx: RequestContext, region: str, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_REGIONS)
    if params.get("parent_region_id"):
        return []
    return [region_row(region)]


def get_region(ctx: RequestContext, region: str, region_id: str) -> Row:
    authorize(ctx, Action.GET_REGION)
    if region_id != region:
        raise NotFound(f"Could not find region: {region_id}.")
    return region_row(region)
