"""Parse the query string of GET /v2/images into a validated ListQuery, the way Glance reads it.

Filters: `name`, `id`, `status`, `container_format`, `disk_format` (exact or `in:a,b`), `owner`,
`visibility`, `member_status`, `os_hidden`, `protected`, `checksum`, `os_hash_value`, `tag`
(repeatable, all must match), `size_min`, `size_max`, comparison operators
(`gt:`, `gte:`, `lt:`, `lte:`, `eq:`, `neq:`) on `created_at`, `updated_at`, `size`,
`virtual_size`, `min_ram`, `min_disk`, and any other name as an exact extra-property match.
Sorting: `sort=key:dir,...` or repeated `sort_key` / `sort_dir`. Paging: `limit`, `marker`.
"""

from __future__ import annotations

import csv
from typing import Any

from starlette.datastructures import QueryParams

from spyglass.errors import Invalid
from spyglass.images.catalog import NUL_MESSAGE, SORT_KEYS, has_nul
from spyglass.images.list_queries import Filter, ListQuery
from spyglass.images.visibility import MEMBER_FILTERS, VISIBILITY_FILTERS
from spyglass.settings import Settings
from spyglass.timeutil import parse_isotime

IN_FILTERS = ("id", "name", "status", "container_format", "disk_format")
EXACT_FILTERS = ("owner", "checksum", "os_hash_value")
BOOLEAN_FILTERS = ("protected",)
COMPARABLE = {
    "created_at": "time",
    "updated_at": "time",
    "size": "int",
    "virtual_size": "int",
    "min_ram": "int",
    "min_disk": "int",
}
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
CONTROL = frozenset(
    {
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "visibility",
        "member_status",
        "os_hidden",
        "tag",
        "size_min",
        "size_max",
    }
)
MAX_INT = 2**63 - 1
# min_ram and min_disk are 32-bit columns: PostgreSQL refuses a larger number in a comparison.
MAX_BY_FILTER = {"min_ram": 2**31 - 1, "min_disk": 2**31 - 1}


def _boolean(name: str, value: str) -> bool:
    """'true' or 'false', read as Glance reads them: it lowercases os_hidden, not protected."""
    text = value.lower() if name == "os_hidden" else value
    if text not in ("true", "false"):
        raise Invalid(f"Invalid value '{text}' for '{name}' filter. Valid values are 'true' or 'false'.")
    return text == "true"


def _integer(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise Invalid(f"Invalid value for '{name}': {value!r} is not an integer.") from exc
    if number < minimum or number > MAX_BY_FILTER.get(name, MAX_INT):
        raise Invalid(f"Invalid value for '{name}': {number} is out of range.")
    return number


def _limit(params: QueryParams, settings: Settings) -> int:
    if "limit" not in params:
        return settings.limit_param_default
    try:
        limit = int(params["limit"])
    except ValueError as exc:
        raise Invalid("limit param must be an integer") from exc
    if limit <= 0:
        raise Invalid("limit param must be positive")
    # As Glance: a limit above the maximum is served as the maximum (the next link continues).
    return min(limit, settings.api_limit_max)


def _sort(params: QueryParams) -> list[tuple[str, str]]:
    """`sort=key:dir,...` or the classic repeated `sort_key` / `sort_dir` (one dir applies to all)."""
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise Invalid("Old and new sorting syntax cannot be combined")
        items = [item.partition(":") for item in params["sort"].strip().split(",")]
        pairs = [(key.strip(), direction.strip() or "desc") for key, _, direction in items]
    else:
        keys = [key.strip() for key in params.getlist("sort_key")]
        dirs = [direction.strip() for direction in params.getlist("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise Invalid("Number of sort dirs does not match the number of sort keys")
        keys = keys or ["created_at"]
        if len(dirs) <= 1:
            dirs = [dirs[0] if dirs else "desc"] * len(keys)
        pairs = list(zip(keys, dirs, strict=True))
    for key, direction in pairs:
        _check_sort(key, direction)
    if len({key for key, _ in pairs}) != len(pairs):
        raise Invalid("A sort key may be given only once.")
    return pairs


def _check_sort(key: str, direction: str) -> None:
    if key not in SORT_KEYS:
        raise Invalid(f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
    if direction not in ("asc", "desc"):
        raise Invalid(f"Invalid sort direction: {direction}")


def _in_values(text: str) -> list[str]:
    try:
        return next(csv.reader([text], skipinitialspace=True), [])
    except csv.Error as exc:  # a line break outside quotes, for one
        raise Invalid(f"Invalid 'in:' list: {exc}.") from exc


def _comparison(name: str, text: str) -> Filter:
    op, sep, raw = text.partition(":")
    if not sep or op not in OPERATORS:
        op, raw = "eq", text
    value: Any
    try:
        value = parse_isotime(raw) if COMPARABLE[name] == "time" else _integer(name, raw)
    except (ValueError, OverflowError) as exc:
        raise Invalid(f"Invalid value for '{name}': {raw!r} is not a valid timestamp.") from exc
    return Filter(name, op, value)


def parse(params: QueryParams, settings: Settings) -> ListQuery:
    if any(has_nul(k) or has_nul(v) for k, v in params.multi_items()):
        raise Invalid(NUL_MESSAGE)
    visibility = params.get("visibility")
    if visibility is not None and visibility not in VISIBILITY_FILTERS:
        raise Invalid(f"Invalid visibility value: {visibility}")
    member_status = params.get("member_status", "accepted")
    if member_status not in MEMBER_FILTERS:
        raise Invalid(f"Invalid status: {member_status}")
    if "changes-since" in params:
        raise Invalid('The "changes-since" filter is no longer available on v2.')
    marker = params.get("marker")
    query = ListQuery(
        limit=_limit(params, settings),
        marker=marker,
        sort=_sort(params),
        visibility=visibility,
        member_status=member_status,
        os_hidden=_boolean("os_hidden", params["os_hidden"]) if "os_hidden" in params else False,
    )
    query.tags.extend(params.getlist("tag"))
    filters = query.filters
    if "size_min" in params:
        filters.append(Filter("size", "gte", _integer("size_min", params["size_min"])))
    if "size_max" in params:
        filters.append(Filter("size", "lte", _integer("size_max", params["size_max"])))
    for name, value in params.multi_items():
        if name in CONTROL:
            continue
        if name in IN_FILTERS and value.startswith("in:"):
            filters.append(Filter(name, "in", _in_values(value[3:])))
        elif name in IN_FILTERS or name in EXACT_FILTERS:
            filters.append(Filter(name, "eq", value))
        elif name in BOOLEAN_FILTERS:
            filters.append(Filter(name, "eq", _boolean(name, value)))
        elif name in COMPARABLE:
            filters.append(_comparison(name, value))
        else:
            query.properties.append((name, value))
    return query
