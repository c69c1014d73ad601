"""Image lists in SQL: the filters of GET /v2/images, keyset pagination over a total order, and a
page read branch by branch (the visibility rule's SQL twin, spyglass.images.visibility, gives them).

The API parses the query string into a ListQuery (spyglass.api.image_list); only this module turns
it into SQL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, and_, exists, func, literal, or_, select, union

from spyglass.context import RequestContext
from spyglass.db.tables import image_properties, image_tags, images
from spyglass.images import states
from spyglass.images.queries import ImageRecord, ImageRow, load_all_extras
from spyglass.images.visibility import list_branches, list_condition


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
    one), after the `marker` image, with their properties, tags and locations."""
    conditions = [
        list_condition(ctx, visibility_filter=query.visibility, member_filter=query.member_status),
        images.c.os_hidden == query.os_hidden,
        images.c.status.not_in((states.DELETED, states.PENDING_DELETE)),
        *_conditions(query),
    ]
    if marker is not None:
        conditions.append(_after_marker(sort, marker.columns()))
    branches = list_branches(ctx, visibility_filter=query.visibility, member_filter=query.member_status)
    rows = page(conn, conditions, sort, query.limit, branches)
    ids = [r["id"] for r in rows]
    props, tags, extra = load_all_extras(conn, ids)
    return [
        ImageRecord.of(
            r,
            properties=props.get(r["id"], {}),
            tags=tags.get(r["id"], []),
            extra_locations=extra.get(r["id"], []),
        )
        for r in rows
    ]


def _conditions(query: ListQuery) -> list[ColumnElement[bool]]:
    return [
        *(_tag_filter(tag) for tag in query.tags),
        *(_column_filter(f) for f in query.filters),
        *(property_filter(name, value) for name, value in query.properties),
    ]


def _column_filter(f: Filter) -> ColumnElement[bool]:
    column = images.c[f.column]
    if f.op == "in":
        return column.in_(f.value)
    condition: ColumnElement[bool] = COMPARISONS[f.op](column, f.value)
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


def property_filter(name: str, value: str) -> ColumnElement[bool]:
    return exists(
        select(1).where(
            image_properties.c.image_id == images.c.id,
            image_properties.c.name == name,
            image_properties.c.value == value,
        )
    )


def _tag_filter(tag: str) -> ColumnElement[bool]:
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
