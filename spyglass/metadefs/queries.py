"""The metadefs package's SQL: namespaces, their objects, properties, tags and resource type
associations, and the resource types.

Services open the transaction and pass the Connection; these functions build and run the statements
and return typed rows. Every element of a namespace is found by the namespace's row id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, delete, func, insert, or_, select, update

from spyglass.db.tables import (
    metadef_namespace_resource_types,
    metadef_namespaces,
    metadef_objects,
    metadef_properties,
    metadef_resource_types,
    metadef_tags,
)
from spyglass.metadefs.paging import EVERYTHING, Page

NS = metadef_namespaces.c
# The namespace and tag lists may be sorted by these columns (Glance's paginate_query takes any column).
NAMESPACE_SORT_KEYS = (
    "namespace",
    "display_name",
    "visibility",
    "protected",
    "owner",
    "created_at",
    "updated_at",
)
TAG_SORT_KEYS = ("name", "created_at", "updated_at")


@dataclass(frozen=True)
class Namespace:
    id: int
    namespace: str
    display_name: str | None
    description: str | None
    visibility: str
    protected: bool
    owner: str
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class MetadefObject:
    id: int
    name: str
    description: str | None
    required: list[str]
    properties: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class Property:
    id: int
    name: str
    json_schema: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class Tag:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class ResourceType:
    id: int
    name: str
    protected: bool
    created_at: datetime
    updated_at: datetime | None


@dataclass(frozen=True)
class Association:
    namespace_id: int
    resource_type_id: int
    name: str
    prefix: str | None
    properties_target: str | None
    created_at: datetime
    updated_at: datetime | None


def _namespace(row: Any) -> Namespace:
    return Namespace(
        row.id,
        row.namespace,
        row.display_name,
        row.description,
        row.visibility,
        bool(row.protected),
        row.owner,
        row.created_at,
        row.updated_at,
    )


# ---- namespaces -------------------------------------------------------------------------------------


def namespace_by_name(conn: Connection, name: str) -> Namespace | None:
    row = conn.execute(select(metadef_namespaces).where(NS.namespace == name)).first()
    return _namespace(row) if row else None


def namespace_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(NS.id).where(NS.namespace == name)).first() is not None


def list_namespaces(
    conn: Connection,
    visible: ColumnElement[bool],
    page: Page,
    marker: Namespace | None,
    *,
    visibility: str | None,
    resource_types: Sequence[str] | None,
) -> list[Namespace]:
    """A page of the namespaces `visible` admits."""
    stmt = select(metadef_namespaces).where(visible)
    if visibility is not None:
        stmt = stmt.where(NS.visibility == visibility)
    if resource_types is not None:
        associated = (
            select(metadef_namespace_resource_types.c.namespace_id)
            .join(metadef_resource_types)
            .where(metadef_resource_types.c.name.in_(resource_types))
        )
        stmt = stmt.where(NS.id.in_(associated))
    # display_name may be NULL, and the two databases sort NULLs at opposite ends: sort it as "".
    columns: dict[str, ColumnElement[Any]] = {k: NS[k] for k in ("id", *NAMESPACE_SORT_KEYS)}
    columns["display_name"] = func.coalesce(NS.display_name, "")
    after = None
    if marker is not None:
        after = {k: getattr(marker, k) for k in page.keys}
        after["display_name"] = marker.display_name or ""
    return [_namespace(r) for r in conn.execute(_paged(stmt, columns, page, after))]


def _paged(
    stmt: Select[Any], columns: Mapping[str, ColumnElement[Any]], page: Page, marker: Mapping[str, Any] | None
) -> Select[Any]:
    """The statement sorted by the page's keys, from after the marker's values, at most a page."""
    keys = page.keys
    if marker is not None:
        terms = []
        for i, key in enumerate(keys):
            beyond = columns[key] < marker[key] if page.sort_dir == "desc" else columns[key] > marker[key]
            terms.append(and_(*(columns[k] == marker[k] for k in keys[:i]), beyond))
        stmt = stmt.where(or_(*terms))
    stmt = stmt.order_by(*(columns[k].desc() if page.sort_dir == "desc" else columns[k].asc() for k in keys))
    return stmt if page.limit is None else stmt.limit(page.limit)


def insert_namespace(conn: Connection, values: dict[str, Any]) -> int:
    return _inserted_id(conn.execute(insert(metadef_namespaces).values(**values)))


def _inserted_id(result: Any) -> int:
    return int(result.inserted_primary_key[0])


def update_namespace(conn: Connection, namespace_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(metadef_namespaces).where(NS.id == namespace_id).values(**values))


def delete_namespace(conn: Connection, namespace_id: int) -> None:
    conn.execute(delete(metadef_namespaces).where(NS.id == namespace_id))


# ---- objects ----------------------------------------------------------------------------------------

OB = metadef_objects.c


def _object(row: Any) -> MetadefObject:
    return MetadefObject(
        row.id,
        row.name,
        row.description,
        list(row.required),
        dict(row.properties),
        row.created_at,
        row.updated_at,
    )


def objects_of(conn: Connection, namespace_id: int) -> list[MetadefObject]:
    """In the order they were made (Glance gives no order; its rows come in id order)."""
    stmt = select(metadef_objects).where(OB.namespace_id == namespace_id)
    return [_object(r) for r in conn.execute(stmt.order_by(OB.id))]


def object_by_name(conn: Connection, namespace_id: int, name: str) -> MetadefObject | None:
    stmt = select(metadef_objects).where(OB.namespace_id == namespace_id, OB.name == name)
    row = conn.execute(stmt).first()
    return _object(row) if row else None


def insert_object(conn: Connection, namespace_id: int, values: dict[str, Any]) -> None:
    conn.execute(insert(metadef_objects).values(namespace_id=namespace_id, **values))


def update_object(conn: Connection, object_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(metadef_objects).where(OB.id == object_id).values(**values))


def delete_object(conn: Connection, object_id: int) -> None:
    conn.execute(delete(metadef_objects).where(OB.id == object_id))


# ---- properties -------------------------------------------------------------------------------------

PR = metadef_properties.c


def _property(row: Any) -> Property:
    return Property(row.id, row.name, dict(row.json_schema), row.created_at, row.updated_at)


def properties_of(conn: Connection, namespace_id: int) -> list[Property]:
    stmt = select(metadef_properties).where(PR.namespace_id == namespace_id)
    return [_property(r) for r in conn.execute(stmt.order_by(PR.id))]


def property_by_name(conn: Connection, namespace_id: int, name: str) -> Property | None:
    stmt = select(metadef_properties).where(PR.namespace_id == namespace_id, PR.name == name)
    row = conn.execute(stmt).first()
    return _property(row) if row else None


def insert_property(conn: Connection, namespace_id: int, values: dict[str, Any]) -> None:
    conn.execute(insert(metadef_properties).values(namespace_id=namespace_id, **values))


def update_property(conn: Connection, property_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(metadef_properties).where(PR.id == property_id).values(**values))


def delete_property(conn: Connection, property_id: int) -> None:
    conn.execute(delete(metadef_properties).where(PR.id == property_id))


# ---- tags -------------------------------------------------------------------------------------------

TG = metadef_tags.c


def _tag(row: Any) -> Tag:
    return Tag(row.id, row.name, row.created_at, row.updated_at)


def tags_of(
    conn: Connection, namespace_id: int, page: Page = EVERYTHING, marker: Tag | None = None
) -> list[Tag]:
    """A page of the namespace's tags; by default all, newest first (Glance's default order)."""
    stmt = select(metadef_tags).where(TG.namespace_id == namespace_id)
    columns = {k: TG[k] for k in ("id", *TAG_SORT_KEYS)}
    after = None if marker is None else {k: getattr(marker, k) for k in page.keys}
    return [_tag(r) for r in conn.execute(_paged(stmt, columns, page, after))]


def tag_by_name(conn: Connection, namespace_id: int, name: str) -> Tag | None:
    stmt = select(metadef_tags).where(TG.namespace_id == namespace_id, TG.name_key == name.lower())
    row = conn.execute(stmt).first()
    return _tag(row) if row else None


def insert_tag(conn: Connection, namespace_id: int, name: str, now: datetime) -> None:
    values = {"name": name, "name_key": name.lower(), "created_at": now, "updated_at": now}
    conn.execute(insert(metadef_tags).values(namespace_id=namespace_id, **values))


def rename_tag(conn: Connection, tag_id: int, name: str, now: datetime) -> None:
    values = {"name": name, "name_key": name.lower(), "updated_at": now}
    conn.execute(update(metadef_tags).where(TG.id == tag_id).values(**values))


def delete_tag(conn: Connection, tag_id: int) -> None:
    conn.execute(delete(metadef_tags).where(TG.id == tag_id))


def delete_contents(conn: Connection, namespace_id: int, kind: str) -> None:
    """Delete every object, property or tag (`kind`) of a namespace."""
    table = {"objects": metadef_objects, "properties": metadef_properties, "tags": metadef_tags}[kind]
    conn.execute(delete(table).where(table.c.namespace_id == namespace_id))


# ---- resource types and associations ----------------------------------------------------------------

RT = metadef_resource_types.c
AS = metadef_namespace_resource_types.c


def resource_types(conn: Connection) -> list[ResourceType]:
    rows = conn.execute(select(metadef_resource_types).order_by(RT.created_at, RT.id))
    return [ResourceType(r.id, r.name, bool(r.protected), r.created_at, r.updated_at) for r in rows]


def resource_type_id(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(RT.id).where(RT.name == name)).scalar()
    return int(found) if found is not None else None


def insert_resource_type(conn: Connection, name: str, protected: bool, now: datetime) -> int:
    values = {"name": name, "protected": protected, "created_at": now, "updated_at": now}
    return _inserted_id(conn.execute(insert(metadef_resource_types).values(**values)))


def associations_of(conn: Connection, namespace_ids: Iterable[int]) -> dict[int, list[Association]]:
    """The resource type associations of each namespace, oldest first."""
    ids = list(namespace_ids)
    found: dict[int, list[Association]] = {i: [] for i in ids}
    if not ids:
        return found
    stmt = (
        select(metadef_namespace_resource_types, RT.name)
        .join(metadef_resource_types)
        .where(AS.namespace_id.in_(ids))
        .order_by(AS.created_at, RT.id)
    )
    for r in conn.execute(stmt):
        found[r.namespace_id].append(
            Association(
                r.namespace_id,
                r.resource_type_id,
                r.name,
                r.prefix,
                r.properties_target,
                r.created_at,
                r.updated_at,
            )
        )
    return found


def insert_association(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(metadef_namespace_resource_types).values(**values))


def update_association(
    conn: Connection, namespace_id: int, resource_type_id: int, values: dict[str, Any]
) -> None:
    where = (AS.namespace_id == namespace_id) & (AS.resource_type_id == resource_type_id)
    conn.execute(update(metadef_namespace_resource_types).where(where).values(**values))


def delete_association(conn: Connection, namespace_id: int, resource_type_id: int) -> None:
    where = (AS.namespace_id == namespace_id) & (AS.resource_type_id == resource_type_id)
    conn.execute(delete(metadef_namespace_resource_types).where(where))
