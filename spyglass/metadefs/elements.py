"""Adding one element (object, property, tag, resource type association) to a namespace, with the
duplicate checks and Glance's messages: shared by the API's services, namespace creation (which
brings its contents along) and the definition loader."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from spyglass.errors import Conflict, Invalid
from spyglass.metadefs import documents, queries

# Names, prefixes and targets are stored in columns of this many characters.
NAME_MAX = 80


def named(item: Any, kind: str) -> str:
    """The name of an element listed in a namespace document, which must have one."""
    name = item.get("name") if isinstance(item, dict) else None
    if not isinstance(name, str) or not name:
        raise Invalid(f"Provided object does not match schema '{kind}': 'name' is a required property")
    short(name, f"{kind} name")
    return name


def short(text: Any, what: str) -> Any:
    """`text`, refused when longer than the column that keeps it (the schemas of a namespace's
    lists do not limit it: a create body or a file could otherwise reach the database with it)."""
    if isinstance(text, str) and len(text) > NAME_MAX:
        raise Invalid(f"The {what} {text[:NAME_MAX]}... is longer than {NAME_MAX} characters.")
    return text


def object_values(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    return {
        "name": named(body, "object"),
        "description": body.get("description"),
        "required": list(body.get("required") or []),
        "properties": {name: documents.property_schema(value) for name, value in props.items()},
    }


@contextmanager
def unique(conflict: Conflict) -> Iterator[None]:
    """A write that a concurrent one may beat to a unique name (PostgreSQL runs them side by side):
    the loser's constraint error is the same 409 the look-up before it gives."""
    try:
        yield
    except IntegrityError:
        raise conflict from None


def object_conflict(name: str, ns_name: str) -> Conflict:
    return Conflict(f"A metadata definition object with name={name} already exists in namespace={ns_name}.")


def property_conflict(name: str, ns_name: str) -> Conflict:
    return Conflict(f"A metadata definition property with name={name} already exists in namespace={ns_name}.")


def add_object(conn: Connection, ns_id: int, ns_name: str, values: dict[str, Any], now: datetime) -> None:
    conflict = object_conflict(values["name"], ns_name)
    if queries.object_by_name(conn, ns_id, values["name"]) is not None:
        raise conflict
    with unique(conflict):
        queries.insert_object(conn, ns_id, {**values, "created_at": now, "updated_at": now})


def add_property(
    conn: Connection, ns_id: int, ns_name: str, name: str, schema: dict[str, Any], now: datetime
) -> None:
    short(name, "property name")
    if queries.property_by_name(conn, ns_id, name) is not None:
        raise property_conflict(name, ns_name)
    values = {
        "name": name,
        "json_schema": documents.property_schema(schema),
        "created_at": now,
        "updated_at": now,
    }
    with unique(property_conflict(name, ns_name)):
        queries.insert_property(conn, ns_id, values)


def tag_conflict(name: str, ns_name: str) -> Conflict:
    return Conflict(
        f"A metadata tag with name={name} already exists in namespace={ns_name}. "
        "(Please note that metadata tag names are case insensitive)."
    )


def add_tag(conn: Connection, ns_id: int, ns_name: str, name: str, now: datetime) -> None:
    if queries.tag_by_name(conn, ns_id, name) is not None:
        raise tag_conflict(name, ns_name)
    with unique(tag_conflict(name, ns_name)):
        queries.insert_tag(conn, ns_id, name, now)


def resource_type(conn: Connection, name: str, now: datetime, *, protected: bool = False) -> int:
    """The id of the resource type `name`, created if new (an association names it first)."""
    found = queries.resource_type_id(conn, name)
    return found if found is not None else queries.insert_resource_type(conn, name, protected, now)


def associate(
    conn: Connection,
    ns_id: int,
    ns_name: str,
    body: dict[str, Any],
    now: datetime,
    *,
    protected: bool = False,
) -> None:
    name = named(body, "resource_type_association")
    rt_id = resource_type(conn, name, now, protected=protected)
    conflict = Conflict(
        f"The metadata definition resource-type association of resource-type={name} to "
        f"namespace={ns_name} already exists."
    )
    if any(a.resource_type_id == rt_id for a in queries.associations_of(conn, [ns_id])[ns_id]):
        raise conflict
    values = {
        "namespace_id": ns_id,
        "resource_type_id": rt_id,
        "prefix": short(body.get("prefix"), "prefix"),
        "properties_target": short(body.get("properties_target"), "properties_target"),
        "created_at": now,
        "updated_at": now,
    }
    with unique(conflict):
        queries.insert_association(conn, values)


def add_all(conn: Connection, ns_id: int, ns_name: str, body: dict[str, Any], now: datetime) -> None:
    """The contents a namespace document lists (a create body, a definition file)."""
    for association in body.get("resource_type_associations") or []:
        associate(conn, ns_id, ns_name, association, now)
    for obj in body.get("objects") or []:
        add_object(conn, ns_id, ns_name, object_values(obj), now)
    for tag in body.get("tags") or []:
        add_tag(conn, ns_id, ns_name, named(tag, "tag"), now)
    for name, schema in (body.get("properties") or {}).items():
        add_property(conn, ns_id, ns_name, name, schema, now)
