"""Namespaces: list, create (with their contents), show (with their contents), replace, delete.

A request body is checked first, as Glance's deserializer does before its controller runs. Then
every call finds the namespace the caller may see (otherwise 404, whether it exists or not) and asks
spyglass.images.policy whether the caller may do the action on it (otherwise 403).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, Invalid, NotFound
from spyglass.images.policy import Action, Target, authorize, permits
from spyglass.metadefs import documents, elements, queries, schemas
from spyglass.metadefs.paging import Page, parse_page
from spyglass.metadefs.queries import Namespace
from spyglass.metadefs.visibility import VISIBILITIES, can_see, visible_condition
from spyglass.timeutil import utcnow


def not_found(name: str) -> NotFound:
    return NotFound(f"Namespace {name} not found")


def find(conn: Connection, ctx: RequestContext, name: str, action: Action, *, missing: str = "") -> Namespace:
    """The namespace `name` if the caller may see it and do `action` on it."""
    ns = queries.namespace_by_name(conn, name)
    if ns is None or not readable(ctx, ns):
        raise NotFound(missing) if missing else not_found(name)
    authorize(ctx, action, target(ns))
    return ns


def readable(ctx: RequestContext, ns: Namespace) -> bool:
    """The visibility rule, and the get_metadef_namespace policy (an operator's policy file may
    narrow it): Glance answers 404 for a namespace either refuses."""
    return can_see(ctx, ns.owner, ns.visibility) and permits(ctx, Action.GET_METADEF_NAMESPACE, target(ns))


def target(ns: Namespace) -> Target:
    return Target(owner=ns.owner, visibility=ns.visibility)


def own_project(ctx: RequestContext) -> Target:
    """The target of an action on no namespace in particular: Glance checks it against the
    caller's own project (`project_id:%(project_id)s` holds)."""
    return Target(owner=ctx.project_id)


def refuse_if_protected(ns: Namespace) -> None:
    if ns.protected:
        raise Forbidden(f"Metadata definition namespace {ns.namespace} is protected and cannot be deleted.")


def _missing(name: str) -> str:
    return f"Metadata definition namespace={name} was not found."


# ---- list -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceQuery:
    page: Page
    visibility: str | None = None
    resource_types: tuple[str, ...] | None = None


def parse_query(params: Mapping[str, str], default_limit: int, max_limit: int) -> NamespaceQuery:
    """The namespace list's query parameters, with Glance's checks and messages."""
    page = parse_page(params, queries.NAMESPACE_SORT_KEYS, default_limit, max_limit)
    visibility = params.get("visibility") or None
    if visibility is not None and visibility not in VISIBILITIES:
        raise Invalid(f"Invalid visibility value: {visibility}")
    resource_types = params.get("resource_types")
    return NamespaceQuery(page, visibility, tuple(resource_types.split(",")) if resource_types else None)


def list_namespaces(
    db: Database, ctx: RequestContext, query: NamespaceQuery
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the namespaces the caller sees, each with its resource type associations, and the
    marker of the next page (the last name, when the page is full)."""
    authorize(ctx, Action.GET_METADEF_NAMESPACES, own_project(ctx))
    authorize(ctx, Action.LIST_METADEF_RESOURCE_TYPES, own_project(ctx))
    with db.read() as conn:
        page, marker = query.page, None
        if page.marker is not None:
            marker = find(conn, ctx, page.marker, Action.GET_METADEF_NAMESPACE, missing=_missing(page.marker))
        rows = queries.list_namespaces(
            conn,
            visible_condition(ctx),
            page,
            marker,
            visibility=query.visibility,
            resource_types=query.resource_types,
        )
        # The SQL twin is the visibility rule with the default policy; a policy file's narrower
        # get_metadef_namespace is applied to each row, as Glance filters its list.
        shown = [ns for ns in rows if permits(ctx, Action.GET_METADEF_NAMESPACE, target(ns))]
        associations = queries.associations_of(conn, (ns.id for ns in shown))
    found = []
    for ns in shown:
        doc = documents.namespace(ns)
        if associations[ns.id]:
            doc["resource_type_associations"] = [documents.association(a) for a in associations[ns.id]]
        found.append(doc)
    more = bool(shown) and len(rows) == query.page.limit
    return found, shown[-1].namespace if more else None


# ---- show -------------------------------------------------------------------------------------------


def get_namespace(
    db: Database, ctx: RequestContext, name: str, resource_type: str | None = None
) -> dict[str, Any]:
    """The namespace with its objects, properties, tags and resource type associations; with
    `resource_type`, property names carry that association's prefix (as a dashboard applies them)."""
    with db.read() as conn:
        ns = find(conn, ctx, name, Action.GET_METADEF_NAMESPACE, missing=_missing(name))
        for action in (
            Action.LIST_METADEF_RESOURCE_TYPES,
            Action.GET_METADEF_OBJECTS,
            Action.GET_METADEF_PROPERTIES,
            Action.GET_METADEF_TAGS,
        ):
            authorize(ctx, action, target(ns))
        return _with_contents(conn, ns, resource_type)


def _with_contents(conn: Connection, ns: Namespace, resource_type: str | None = None) -> dict[str, Any]:
    associations = queries.associations_of(conn, [ns.id])[ns.id]
    prefix = next((a.prefix or "" for a in associations if a.name == resource_type), "")
    doc = documents.namespace(ns)
    objects = queries.objects_of(conn, ns.id)
    if objects:
        doc["objects"] = [documents.metadef_object(ns.namespace, o, prefix) for o in objects]
    if associations:
        doc["resource_type_associations"] = [documents.association(a) for a in associations]
    props = queries.properties_of(conn, ns.id)
    if props:
        doc["properties"] = documents.properties(props, prefix)
    tags = queries.tags_of(conn, ns.id)
    if tags:
        doc["tags"] = [{"name": t.name} for t in tags]
    return doc


# ---- create, replace, delete ------------------------------------------------------------------------


def _namespace_values(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": body["namespace"],
        "display_name": body.get("display_name"),
        "description": body.get("description"),
        "visibility": body.get("visibility") or "private",
        "protected": bool(body.get("protected") or False),
        "owner": body.get("owner") or ctx.project_id,
    }


def create_namespace(db: Database, ctx: RequestContext, body: Any) -> dict[str, Any]:
    """A namespace and, in the same transaction, the contents the body lists."""
    body = schemas.validate("namespace", body)
    authorize(ctx, Action.ADD_METADEF_NAMESPACE, own_project(ctx))
    for key, action in (
        ("resource_type_associations", Action.ADD_METADEF_RESOURCE_TYPE_ASSOCIATION),
        ("objects", Action.ADD_METADEF_OBJECT),
        ("properties", Action.ADD_METADEF_PROPERTY),
        ("tags", Action.ADD_METADEF_TAG),
    ):
        if body.get(key):
            authorize(ctx, action, own_project(ctx))
    name = body["namespace"]
    now = utcnow()
    conflict = Conflict(f"The metadata definition namespace={name} already exists.")
    with db.write() as conn:
        if queries.namespace_exists(conn, name):
            raise conflict
        values = {**_namespace_values(ctx, body), "created_at": now, "updated_at": now}
        with elements.unique(conflict):
            ns_id = queries.insert_namespace(conn, values)
        elements.add_all(conn, ns_id, name, body, now)
        ns = queries.namespace_by_name(conn, name)
        assert ns is not None
        return _with_contents(conn, ns)


def update_namespace(db: Database, ctx: RequestContext, name: str, body: Any) -> dict[str, Any]:
    """Replace a namespace's own attributes (its contents stay): what the body leaves out takes
    its default, as Glance's PUT does."""
    body = schemas.validate("namespace", body)
    with db.write() as conn:
        ns = find(conn, ctx, name, Action.MODIFY_METADEF_NAMESPACE)
        new_name = body["namespace"]
        conflict = Conflict(
            "Invalid update. It would result in a duplicate metadata definition namespace "
            f"with the same name of {new_name}"
        )
        if new_name != name and queries.namespace_exists(conn, new_name):
            raise conflict
        with elements.unique(conflict):
            queries.update_namespace(conn, ns.id, {**_namespace_values(ctx, body), "updated_at": utcnow()})
        updated = queries.namespace_by_name(conn, new_name)
        assert updated is not None
        return documents.namespace(updated)


def delete_namespace(db: Database, ctx: RequestContext, name: str) -> None:
    """Delete a namespace that is not protected, with everything in it."""
    with db.write() as conn:
        ns = find(conn, ctx, name, Action.DELETE_METADEF_NAMESPACE)
        refuse_if_protected(ns)
        queries.delete_namespace(conn, ns.id)
