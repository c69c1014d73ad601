"""A namespace's objects, properties and tags: list, show, create, replace, delete, and delete all.

A request body is checked first (Glance's deserializer runs before its controller); then each call
finds the namespace (404 for one the caller cannot see, spyglass.metadefs.namespaces) and authorizes
the action on it. Elements of a protected namespace cannot be deleted (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Forbidden, NotFound
from spyglass.images.policy import Action, authorize
from spyglass.metadefs import documents, elements, queries, schemas
from spyglass.metadefs.namespaces import find, refuse_if_protected, target
from spyglass.metadefs.paging import EVERYTHING, Page, parse_page
from spyglass.metadefs.queries import Association, MetadefObject, Namespace, Property, Tag
from spyglass.timeutil import utcnow


def _protected(ns: Namespace, kind: str, name: str) -> None:
    if ns.protected:
        raise Forbidden(f"Metadata definition {kind} {name} is protected and cannot be deleted.")


# ---- objects ----------------------------------------------------------------------------------------


def _object(conn: Connection, ns: Namespace, name: str) -> MetadefObject:
    found = queries.object_by_name(conn, ns.id, name)
    if found is None:
        raise NotFound(
            f"The metadata definition object with name={name} was not found in namespace={ns.namespace}."
        )
    return found


def _object_body(body: Any) -> dict[str, Any]:
    body = schemas.validate("object", body)
    for prop in (body.get("properties") or {}).values():
        schemas.validate("properties_item", prop, read_only=())
    return elements.object_values(body)


def list_objects(db: Database, ctx: RequestContext, ns_name: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.GET_METADEF_OBJECTS)
        authorize(ctx, Action.GET_METADEF_OBJECT, target(ns))
        return [documents.metadef_object(ns.namespace, o) for o in queries.objects_of(conn, ns.id)]


def get_object(db: Database, ctx: RequestContext, ns_name: str, name: str) -> dict[str, Any]:
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.GET_METADEF_OBJECT)
        return documents.metadef_object(ns.namespace, _object(conn, ns, name))


def create_object(db: Database, ctx: RequestContext, ns_name: str, body: Any) -> dict[str, Any]:
    values = _object_body(body)
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.ADD_METADEF_OBJECT)
        elements.add_object(conn, ns.id, ns.namespace, values, utcnow())
        return documents.metadef_object(ns.namespace, _object(conn, ns, values["name"]))


def update_object(db: Database, ctx: RequestContext, ns_name: str, name: str, body: Any) -> dict[str, Any]:
    values = elements.object_values(schemas.validate("object", body))
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.MODIFY_METADEF_OBJECT)
        obj = _object(conn, ns, name)
        conflict = elements.object_conflict(values["name"], ns.namespace)
        if values["name"] != name and queries.object_by_name(conn, ns.id, values["name"]) is not None:
            raise conflict
        with elements.unique(conflict):
            queries.update_object(conn, obj.id, {**values, "updated_at": utcnow()})
        return documents.metadef_object(ns.namespace, _object(conn, ns, values["name"]))


def delete_object(db: Database, ctx: RequestContext, ns_name: str, name: str) -> None:
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.DELETE_METADEF_OBJECT)
        obj = _object(conn, ns, name)
        _protected(ns, "object", name)
        queries.delete_object(conn, obj.id)


def delete_all(db: Database, ctx: RequestContext, ns_name: str, kind: str) -> None:
    """Delete every object, property or tag (`kind`) of a namespace: allowed to whoever may delete
    the namespace (and, for tags, the tags), refused for a protected namespace."""
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.DELETE_METADEF_NAMESPACE)
        if kind == "tags":
            authorize(ctx, Action.DELETE_METADEF_TAGS, target(ns))
        refuse_if_protected(ns)
        queries.delete_contents(conn, ns.id, kind)


# ---- properties -------------------------------------------------------------------------------------


def _property(conn: Connection, ns: Namespace, name: str) -> Property:
    found = queries.property_by_name(conn, ns.id, name)
    if found is None:
        raise NotFound(
            f"The metadata definition property with name={name} was not found in namespace={ns.namespace}."
        )
    return found


def list_properties(db: Database, ctx: RequestContext, ns_name: str) -> dict[str, Any]:
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.GET_METADEF_PROPERTIES)
        return documents.properties(queries.properties_of(conn, ns.id))


def get_property(
    db: Database, ctx: RequestContext, ns_name: str, name: str, resource_type: str | None = None
) -> dict[str, Any]:
    """A property; with `resource_type`, `name` is given with that association's prefix."""
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.GET_METADEF_PROPERTY)
        if resource_type:
            authorize(ctx, Action.GET_METADEF_RESOURCE_TYPE, target(ns))
            name = _unprefixed(_association(conn, ns, resource_type), name)
        return documents.property_doc(_property(conn, ns, name))


def _association(conn: Connection, ns: Namespace, resource_type: str) -> Association:
    for association in queries.associations_of(conn, [ns.id])[ns.id]:
        if association.name == resource_type:
            return association
    raise NotFound(
        f"The metadata definition resource-type association of resource-type={resource_type} to "
        f"namespace={ns.namespace}, was not found."
    )


def _unprefixed(association: Association, name: str) -> str:
    prefix = association.prefix
    if prefix and name.startswith(prefix):
        return name[len(prefix) :]
    raise NotFound(
        f"Property {name} does not start with the expected resource type association prefix of '{prefix}'."
    )


def create_property(db: Database, ctx: RequestContext, ns_name: str, body: Any) -> dict[str, Any]:
    body = schemas.validate("property", body, read_only=("created_at", "updated_at"))
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.ADD_METADEF_PROPERTY)
        elements.add_property(conn, ns.id, ns.namespace, body["name"], body, utcnow())
        return documents.property_doc(_property(conn, ns, body["name"]))


def update_property(db: Database, ctx: RequestContext, ns_name: str, name: str, body: Any) -> dict[str, Any]:
    body = schemas.validate("property", body, read_only=("created_at", "updated_at"))
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.MODIFY_METADEF_PROPERTY)
        prop = _property(conn, ns, name)
        new_name = body["name"]
        conflict = elements.property_conflict(new_name, ns.namespace)
        if new_name != name and queries.property_by_name(conn, ns.id, new_name) is not None:
            raise conflict
        values = {"name": new_name, "json_schema": documents.property_schema(body), "updated_at": utcnow()}
        with elements.unique(conflict):
            queries.update_property(conn, prop.id, values)
        return documents.property_doc(_property(conn, ns, new_name))


def delete_property(db: Database, ctx: RequestContext, ns_name: str, name: str) -> None:
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.REMOVE_METADEF_PROPERTY)
        prop = _property(conn, ns, name)
        _protected(ns, "property", name)
        queries.delete_property(conn, prop.id)


# ---- tags -------------------------------------------------------------------------------------------


def _tag(conn: Connection, ns: Namespace, name: str) -> Tag:
    found = queries.tag_by_name(conn, ns.id, name)
    if found is None:
        raise NotFound(
            f"The metadata definition tag with name={name} was not found in namespace={ns.namespace}."
        )
    return found


def parse_tag_page(params: Mapping[str, str]) -> Page:
    """The tag list's limit, marker (a tag name), sort_key and sort_dir; no limit by default."""
    return parse_page(params, queries.TAG_SORT_KEYS, None, None)


def list_tags(
    db: Database, ctx: RequestContext, ns_name: str, page: Page = EVERYTHING
) -> list[dict[str, Any]]:
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.GET_METADEF_TAGS)
        marker = _tag(conn, ns, page.marker) if page.marker else None
        return [{"name": t.name} for t in queries.tags_of(conn, ns.id, page, marker)]


def get_tag(db: Database, ctx: RequestContext, ns_name: str, name: str) -> dict[str, Any]:
    with db.read() as conn:
        ns = find(conn, ctx, ns_name, Action.GET_METADEF_TAG)
        return documents.tag(_tag(conn, ns, name))


def create_tag(db: Database, ctx: RequestContext, ns_name: str, name: str) -> dict[str, Any]:
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.ADD_METADEF_TAG)
        schemas.validate("tag", {"name": name})
        elements.add_tag(conn, ns.id, ns.namespace, name, utcnow())
        return documents.tag(_tag(conn, ns, name))


def create_tags(
    db: Database, ctx: RequestContext, ns_name: str, body: Any, append: bool
) -> list[dict[str, Any]]:
    """Several tags at once. Without `append` (Glance's X-Openstack-Append header) they replace the
    namespace's tags; a name twice, or already there when appending, is a conflict and adds none."""
    names = [tag["name"] for tag in schemas.validate("tags_body", body).get("tags", [])]
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.ADD_METADEF_TAGS)
        if names and not append:
            queries.delete_contents(conn, ns.id, "tags")
        now = utcnow()
        for name in names:
            elements.add_tag(conn, ns.id, ns.namespace, name, now)
        return [{"name": name} for name in names]


def update_tag(db: Database, ctx: RequestContext, ns_name: str, name: str, body: Any) -> dict[str, Any]:
    new_name = schemas.validate("tag", body)["name"]
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.MODIFY_METADEF_TAG)
        tag = _tag(conn, ns, name)
        other = queries.tag_by_name(conn, ns.id, new_name)
        conflict = elements.tag_conflict(new_name, ns.namespace)
        if other is not None and other.id != tag.id:
            raise conflict
        with elements.unique(conflict):
            queries.rename_tag(conn, tag.id, new_name, utcnow())
        return documents.tag(_tag(conn, ns, new_name))


def delete_tag(db: Database, ctx: RequestContext, ns_name: str, name: str) -> None:
    with db.write() as conn:
        ns = find(conn, ctx, ns_name, Action.DELETE_METADEF_TAG)
        tag = _tag(conn, ns, name)
        _protected(ns, "tag", name)
        queries.delete_tag(conn, tag.id)
