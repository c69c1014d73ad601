"""Resource types (OS::Glance::Image, OS::Nova::Flavor, ...) and their associations with namespaces.

A resource type comes into being when a namespace is first associated with it (or from definition
files); an association says with which `prefix` the namespace's properties apply to that resource
type, and `properties_target` where (Cinder volumes: `image` or `volume` metadata).
"""

from __future__ import annotations

from typing import Any

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Forbidden, NotFound
from spyglass.images.policy import Action, authorize
from spyglass.metadefs import documents, elements, queries, schemas
from spyglass.metadefs.namespaces import find, own_project
from spyglass.timeutil import utcnow


def list_resource_types(db: Database, ctx: RequestContext) -> list[dict[str, Any]]:
    authorize(ctx, Action.LIST_METADEF_RESOURCE_TYPES, own_project(ctx))
    with db.read() as conn:
        return [documents.resource_type(rt) for rt in queries.resource_types(conn)]


def list_associations(db: Database, ctx: RequestContext, ns_name: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.LIST_METADEF_RESOURCE_TYPES)
        return [documents.association(a) for a in queries.associations_of(conn, [ns.id])[ns.id]]


def associate(db: Database, ctx: RequestContext, ns_name: str, body: Any) -> dict[str, Any]:
    body = schemas.validate("resource_type", body)
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.ADD_METADEF_RESOURCE_TYPE_ASSOCIATION)
        elements.associate(conn, ns.id, ns.namespace, body, utcnow())
        made = next(a for a in queries.associations_of(conn, [ns.id])[ns.id] if a.name == body["name"])
        return documents.association(made)


def dissociate(db: Database, ctx: RequestContext, ns_name: str, resource_type: str) -> None:
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.REMOVE_METADEF_RESOURCE_TYPE_ASSOCIATION)
        found = [a for a in queries.associations_of(conn, [ns.id])[ns.id] if a.name == resource_type]
        if not found:
            raise NotFound(f"Failed to find resource type {resource_type} to delete")
        if ns.protected:
            raise Forbidden(
                f"Metadata definition resource-type-association {resource_type} is protected "
                "and cannot be deleted."
            )
        queries.delete_association(conn, ns.id, found[0].resource_type_id)
