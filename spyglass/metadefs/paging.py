"""Pages of a list, as Glance's paginate_query makes them: sorted by the chosen key, then
created_at and id, all in one direction, starting after a marker row. Used by the namespace list
and the tag list; the query parameters are checked with Glance's messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from spyglass.errors import Invalid


@dataclass(frozen=True)
class Page:
    limit: int | None
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys([self.sort_key, "created_at", "id"]))


# Every row, in the default order.
EVERYTHING = Page(limit=None)


def parse_page(
    params: Mapping[str, str], sort_keys: tuple[str, ...], default_limit: int | None, max_limit: int | None
) -> Page:
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise Invalid(f"Invalid sort direction: {sort_dir}")
    sort_key = params.get("sort_key", "created_at")
    if sort_key not in sort_keys:
        raise Invalid(
            f"Invalid sort key: {sort_key}. It must be one of the following: {', '.join(sort_keys)}."
        )
    return Page(
        _limit(params.get("limit"), default_limit, max_limit),
        params.get("marker") or None,
        sort_key,
        sort_dir,
    )


def _limit(raw: str | None, default: int | None, maximum: int | None) -> int | None:
    limit = default
    if raw:
        try:
            limit = int(raw)
        except ValueError:
            raise Invalid("limit param must be an integer") from None
        if limit < 0:
            raise Invalid("limit param must be positive")
    if limit is not None and maximum is not None:
        limit = min(limit, maximum)
    return limit
