"""Image lists in SQL: the filters of GET /v2/images, keyset pagination over a total order, and a
page read part by part (the visibility rule's parts, spyglass.images.visibility, give them), with
each image's properties, tags and locations, in one statement.

The API parses the query string into a ListQuery (spyglass.api.image_list); only this module turns
it into SQL. The statement is built once per shape of list and reused with the request's values as
bound parameters (`page_statement`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Subquery,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    union,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from spyglass.context import RequestContext
from spyglass.db.tables import image_locations, image_properties, image_tags, images
from spyglass.images import states
from spyglass.images.queries import COLUMNS, ImageRecord, ImageRow, Location
from spyglass.images.visibility import list_parts


class Filter(NamedTuple):
    """A condition on one images column: `op` is one of COMPARISONS, or "in" with a list of values."""

    column: str
    op: str
    value: Any


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@dataclass
class ListQuery:
    """A parsed, validated image list request."""

    limit: int
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    visibility: str | None = None
    member_status: str = "accepted"
    os_hidden: bool = False
    filters: list[Filter] = field(default_factory=list)
    # Every tag must be on the image; every (name, value) must be one of its extra properties.
    tags: list[str] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)


def list_page(
    conn: Connection,
    ctx: RequestContext,
    query: ListQuery,
    sort: Sequence[tuple[str, str]],
    marker: ImageRow | None,
) -> list[ImageRecord]:
    """The page of images the caller may list that `query` asks for, in the `sort` order (a total
    one), after the `marker` image, with their properties, tags and locations: one statement."""
    shape = Shape.of(conn.dialect.name, ctx, query, sort, marker is not None)
    rows = conn.execute(page_statement(shape), _values(ctx, query, sort, marker)).all()
    return [_record(row) for row in rows]


class Shape(NamedTuple):
    """What the list statement's SQL depends on; the values (the caller's project, the filters'
    values, the marker's, the limit) are bound parameters, so that one statement serves them all."""

    dialect: str
    admin: bool
    # "none", "empty" or "set": the visibility rule tells these callers apart.
    project: str
    visibility: str | None
    member_status: str
    sort: tuple[tuple[str, str], ...]
    marker: bool
    filters: tuple[tuple[str, str], ...]
    tags: int
    properties: int

    @classmethod
    def of(
        cls,
        dialect: str,
        ctx: RequestContext,
        query: ListQuery,
        sort: Sequence[tuple[str, str]],
        marker: bool,
    ) -> Shape:
        project = "none" if ctx.project_id is None else ("set" if ctx.project_id else "empty")
        return cls(
            dialect,
            ctx.is_admin,
            project,
            query.visibility,
            query.member_status,
            tuple(sort),
            marker,
            tuple((f.column, f.op) for f in query.filters),
            len(query.tags),
            len(query.properties),
        )

    def caller(self) -> RequestContext:
        """A caller of this kind, for the visibility rule (its project id is never read)."""
        project = {"none": None, "empty": "", "set": "?"}[self.project]
        return RequestContext(
            user_id="", project_id=project, roles=frozenset({"admin"} if self.admin else ())
        )


# Shapes seen by this process: a few for the usual lists, more for clients that vary their filters.
_STATEMENTS: dict[Shape, Select[Any]] = {}
_MOST_STATEMENTS = 512


def page_statement(shape: Shape) -> Select[Any]:
    """The list statement of this shape, built once: SQLAlchemy then finds its compiled form by the
    statement's memoized cache key, and PostgreSQL prepares it after a few uses on a connection."""
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        stmt = _build(shape)
        if len(_STATEMENTS) >= _MOST_STATEMENTS:
            _STATEMENTS.clear()
        _STATEMENTS[shape] = stmt
    return stmt


# Constants in the text, not parameters: PostgreSQL plans with them.
_HIDDEN: list[ColumnElement[str]] = [
    literal_column(f"'{status}'") for status in (states.DELETED, states.PENDING_DELETE)
]


def _build(shape: Shape) -> Select[Any]:
    """The page: each part of the visibility rule read through its own index, sorted and cut to the
    page size, the few rows merged, sorted and cut again, each with its extras as JSON arrays."""
    conditions = [
        images.c.os_hidden == bindparam("os_hidden", type_=Boolean),
        images.c.status.not_in(_HIDDEN),
        *(_tag_filter(bindparam(f"tag_{i}")) for i in range(shape.tags)),
        *(_column_filter(column, op, f"filter_{i}") for i, (column, op) in enumerate(shape.filters)),
        *(property_filter(bindparam(f"name_{i}"), bindparam(f"value_{i}")) for i in range(shape.properties)),
    ]
    if shape.marker:
        conditions.append(_after_marker(shape.sort, {k: bindparam(f"marker_{k}") for k, _ in shape.sort}))
    parts = list_parts(
        shape.caller(),
        project=bindparam("project_id", type_=String),
        visibility_filter=shape.visibility,
        member_filter=shape.member_status,
    )
    parts = parts or [false()]  # a caller without a project asking for shared or private images
    limit = bindparam("limit", type_=Integer)
    order = _order(shape.sort)
    columns = [*(images.c[name] for name in COLUMNS), *extras_columns(shape.dialect)]
    if len(parts) == 1:
        return select(*columns).where(parts[0], *conditions).order_by(*order).limit(limit)
    keys = [images.c.id, *(images.c[k] for k, _ in shape.sort if k != "id")]
    branches = [
        select(*keys).where(part, *conditions).order_by(*order).limit(limit).subquery() for part in parts
    ]
    merged = union(*(select(branch) for branch in branches)).subquery()
    return select(*columns).join(merged, merged.c.id == images.c.id).order_by(*order).limit(limit)


def extras_columns(dialect: str) -> list[ColumnElement[Any]]:
    """An image's properties (an object, by name), tags (an array, by value) and further locations
    (an array of [store, key], by creation time then store) in JSON text, in the order fetch_image
    gives them. PostgreSQL orders within the aggregate; SQLite (before 3.44) aggregates an ordered
    subquery, whose order it keeps for an aggregate other than count, min and max."""
    p, t, loc = image_properties, image_tags, image_locations
    if dialect == "postgresql":
        aggregates = [
            (p, func.json_object_agg(p.c.name, aggregate_order_by(p.c.value, p.c.name))),
            (t, func.json_agg(aggregate_order_by(t.c.value, t.c.value))),
            (
                loc,
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_array(loc.c.store, loc.c.blob_key), loc.c.created_at, loc.c.store
                    )
                ),
            ),
        ]
        return [
            select(cast(aggregate, Text)).where(table.c.image_id == images.c.id).scalar_subquery()
            for table, aggregate in aggregates
        ]
    properties = _ordered(select(p.c.name, p.c.value).where(p.c.image_id == images.c.id).order_by(p.c.name))
    tags = _ordered(select(t.c.value).where(t.c.image_id == images.c.id).order_by(t.c.value))
    locations = _ordered(
        select(loc.c.store, loc.c.blob_key)
        .where(loc.c.image_id == images.c.id)
        .order_by(loc.c.created_at, loc.c.store)
    )
    # An array made in the subquery would reach the aggregate as a string: build it outside.
    return [
        select(func.json_group_object(properties.c.name, properties.c.value)).scalar_subquery(),
        select(func.json_group_array(tags.c.value)).scalar_subquery(),
        select(
            func.json_group_array(func.json_array(locations.c.store, locations.c.blob_key))
        ).scalar_subquery(),
    ]


def _ordered(stmt: Select[Any]) -> Subquery:
    return stmt.correlate(images).subquery()


def _values(
    ctx: RequestContext, query: ListQuery, sort: Sequence[tuple[str, str]], marker: ImageRow | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "project_id": ctx.project_id or "",
        "os_hidden": query.os_hidden,
        "limit": query.limit,
    }
    for i, tag in enumerate(query.tags):
        values[f"tag_{i}"] = tag
    for i, f in enumerate(query.filters):
        values[f"filter_{i}"] = f.value
    for i, (name, value) in enumerate(query.properties):
        values[f"name_{i}"] = name
        values[f"value_{i}"] = value
    if marker is not None:
        row = marker.columns()
        for key, _ in sort:
            values[f"marker_{key}"] = _marker_value(row, key)
    return values


def _record(row: Any) -> ImageRecord:
    properties, tags, extra = row[_EXTRAS:]
    return _new_record(
        *row[:_EXTRAS],
        properties=orjson.loads(properties) if properties else {},
        tags=orjson.loads(tags) if tags else [],
        extra_locations=[Location(*found) for found in orjson.loads(extra)] if extra else [],
    )


_EXTRAS = len(COLUMNS)
# The statement selects the columns in the order of the record's first fields: positional
# arguments, which mypy cannot count, build it faster than a dict of them.
_new_record: Callable[..., ImageRecord] = ImageRecord


def _column_filter(name: str, op: str, parameter: str) -> ColumnElement[bool]:
    column = images.c[name]
    if op == "in":
        return column.in_(bindparam(parameter, expanding=True))
    condition: ColumnElement[bool] = COMPARISONS[op](column, bindparam(parameter))
    return condition


# Columns that may be NULL sort as if they held these values, so that keyset pagination has a
# total order to compare against.
_NULL_SORTS_AS: dict[str, Any] = {"name": "", "container_format": "", "disk_format": "", "size": -1}


def _sort_expression(key: str, columns: Any = images.c) -> ColumnElement[Any]:
    column: ColumnElement[Any] = columns[key]
    if key in _NULL_SORTS_AS:
        return func.coalesce(column, literal(_NULL_SORTS_AS[key]))
    return column


def _after_marker(sort: Sequence[tuple[str, str]], marker: dict[str, Any]) -> ColumnElement[bool]:
    """Rows strictly after the marker row in the given order (keyset pagination)."""
    clauses = []
    for i, (key, direction) in enumerate(sort):
        equal_before = [_sort_expression(k) == _marker_value(marker, k) for k, _ in sort[:i]]
        expr = _sort_expression(key)
        value = _marker_value(marker, key)
        beyond = expr > value if direction == "asc" else expr < value
        clauses.append(and_(*equal_before, beyond))
    return or_(*clauses)


def _marker_value(marker: dict[str, Any], key: str) -> Any:
    value = marker[key]
    if value is None:
        return _NULL_SORTS_AS.get(key)
    return value


def property_filter(name: Any, value: Any) -> ColumnElement[bool]:
    """Has the image this extra property with this value (strings, or bound parameters)?"""
    return exists(
        select(1).where(
            image_properties.c.image_id == images.c.id,
            image_properties.c.name == name,
            image_properties.c.value == value,
        )
    )


def _tag_filter(tag: Any) -> ColumnElement[bool]:
    return exists(select(1).where(image_tags.c.image_id == images.c.id, image_tags.c.value == tag))


def _order(sort: Sequence[tuple[str, str]], columns: Any = images.c) -> list[ColumnElement[Any]]:
    return [
        _sort_expression(k, columns).asc() if d == "asc" else _sort_expression(k, columns).desc()
        for k, d in sort
    ]


def page(
    conn: Connection,
    conditions: Sequence[ColumnElement[bool]],
    sort: Sequence[tuple[str, str]],
    limit: int,
    branches: Sequence[ColumnElement[bool]] = (),
) -> list[dict[str, Any]]:
    """One sorted page of the images matching `conditions`.

    With `branches` (conditions whose union covers every matching row), each branch is read
    through its own index, sorted and cut to the page size first, and only those few rows are
    merged: the cost follows the page size, not the size of the catalogue.
    """
    if not branches:
        stmt = select(images).where(*conditions).order_by(*_order(sort)).limit(limit)
        return [dict(r) for r in conn.execute(stmt).mappings()]
    # The branches carry only the id and the sort keys: SQLAlchemy builds a proxy of every column a
    # subquery selects, on every call, and that cost more than the query itself for whole rows.
    keys = [images.c.id, *(images.c[k] for k, _ in sort if k != "id")]
    parts = [
        select(*keys).where(branch, *conditions).order_by(*_order(sort)).limit(limit).subquery()
        for branch in branches
    ]
    merged = union(*(select(part) for part in parts)).subquery()
    stmt = select(images).join(merged, merged.c.id == images.c.id).order_by(*_order(sort)).limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]
