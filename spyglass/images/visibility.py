"""Who can see which image: one rule, in two forms that must agree.

`can_show` and `is_listed` are the Python predicates; `list_condition` is their SQL twin, and
`list_parts` the same rule cut into index-friendly parts for the image list. tests/test_visibility.py
proves with hypothesis that the two forms agree over every
visibility x caller relation x member status x role x filter combination.

A member row only grants anything while the image's visibility is `shared`: turning an image
private keeps its member rows, but they stop granting access until it is shared again.

While the owner's project is disabled in the identity service, its images are reachable by no
other project (shared, community and public alike) until it is enabled again; only admins see them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from spyglass.context import RequestContext
from spyglass.db.tables import image_members, images, projects

VISIBILITIES = ("public", "community", "shared", "private")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
MEMBER_FILTERS = (*MEMBER_STATUSES, "all")
VISIBILITY_FILTERS = (*VISIBILITIES, "all")


def can_show(
    ctx: RequestContext,
    visibility: str,
    owner: str | None,
    member_status: str | None,
    owner_suspended: bool = False,
    recycled: bool = False,
) -> bool:
    """May the caller show and download this image? A member in any status may.

    An image in the recycle bin (pending_delete) is seen by its owner and admins only; the image
    list leaves it out for everyone.
    """
    if ctx.is_admin or (owner is not None and owner == ctx.project_id):
        return True
    if owner_suspended or recycled:
        return False
    return visibility in ("public", "community") or (visibility == "shared" and member_status is not None)


def is_listed(
    ctx: RequestContext,
    visibility: str,
    owner: str | None,
    member_status: str | None,
    *,
    visibility_filter: str | None,
    member_filter: str,
    owner_suspended: bool = False,
) -> bool:
    """Does the image appear in the caller's list for these query filters?"""
    if visibility_filter not in (None, "all") and visibility != visibility_filter:
        return False
    owned = owner is not None and owner == ctx.project_id
    if ctx.is_admin:
        # As Glance: other projects' community images only when asked for (community or all).
        return visibility_filter is not None or visibility != "community" or owned
    if owner_suspended and not owned:
        return False
    shared_with_me = (
        visibility == "shared"
        and member_status is not None
        and (member_filter == "all" or member_status == member_filter)
    )
    if visibility_filter == "community" or visibility_filter == "all":
        return owned or shared_with_me or visibility in ("public", "community")
    return owned or shared_with_me or visibility == "public"


def list_condition(
    ctx: RequestContext, *, visibility_filter: str | None, member_filter: str
) -> ColumnElement[bool]:
    """The SQL twin of `is_listed`, a WHERE clause on the images table."""
    if visibility_filter not in (None, "all"):
        by_visibility: ColumnElement[bool] = images.c.visibility == visibility_filter
    else:
        by_visibility = true()
    owned = images.c.owner == ctx.project_id if ctx.project_id else false()
    if ctx.is_admin:
        if visibility_filter is None:
            return or_(images.c.visibility != "community", owned)
        return by_visibility
    membership = [
        image_members.c.image_id == images.c.id,
        image_members.c.member_id == ctx.project_id,
    ]
    if member_filter != "all":
        membership.append(image_members.c.status == member_filter)
    shared_with_me = and_(images.c.visibility == "shared", exists(select(1).where(*membership)))
    open_to_all: ColumnElement[bool] = (
        images.c.visibility.in_(("public", "community"))
        if visibility_filter in ("community", "all")
        else images.c.visibility == "public"
    )
    return and_(by_visibility, or_(owned, and_(~owner_suspended(), or_(shared_with_me, open_to_all))))


def list_branches(
    ctx: RequestContext, *, visibility_filter: str | None, member_filter: str
) -> list[ColumnElement[bool]]:
    """Index-friendly conditions whose union covers every row `list_condition` admits.

    The list reads each branch through its own index (owner, visibility, the caller's member rows)
    and merges the few rows each yields, instead of filtering the whole table. Empty for admins,
    whose list is the plain filter. tests/test_visibility.py checks the coverage.
    """
    if ctx.is_admin:
        return []
    owned = images.c.owner == (ctx.project_id or "")
    branches: list[ColumnElement[bool]] = [owned]
    if visibility_filter in (None, "public", "all"):
        branches.append(images.c.visibility == "public")
    if visibility_filter in ("community", "all"):
        branches.append(images.c.visibility == "community")
    if visibility_filter in (None, "shared", "all"):
        mine = [image_members.c.member_id == (ctx.project_id or "")]
        if member_filter != "all":
            mine.append(image_members.c.status == member_filter)
        branches.append(images.c.id.in_(select(image_members.c.image_id).where(*mine)))
    return branches


def list_parts(
    ctx: RequestContext,
    *,
    project: ColumnElement[Any],
    visibility_filter: str | None,
    member_filter: str,
) -> list[ColumnElement[bool]]:
    """`list_condition` as parts whose union admits exactly what it admits, each part read through
    its own index (the caller's own images, the public ones, the community ones, the caller's member
    rows); one part, the plain filter, for admins.

    Only the kind of caller is read from `ctx` (admin or not, with a project or not): the project's
    id is `project`, a bound parameter, so that one statement built from the parts serves every
    caller of that kind. Each part is simpler than `list_condition` under it: the caller's own
    images need no other test, and the images of other projects need the owner not suspended.
    """
    if ctx.is_admin:
        if visibility_filter is None:
            owned = images.c.owner == project if ctx.project_id else false()
            return [or_(images.c.visibility != "community", owned)]
        return [true() if visibility_filter == "all" else images.c.visibility == visibility_filter]
    parts: list[ColumnElement[bool]] = []
    if ctx.project_id:
        owned = images.c.owner == project
        if visibility_filter not in (None, "all"):
            owned = and_(owned, images.c.visibility == visibility_filter)
        parts.append(owned)
    not_suspended = ~owner_suspended()
    if visibility_filter in (None, "public", "all"):
        parts.append(and_(images.c.visibility == "public", not_suspended))
    if visibility_filter in ("community", "all"):
        parts.append(and_(images.c.visibility == "community", not_suspended))
    # As list_condition: a project id of None matches no member row (an empty one would).
    if ctx.project_id is not None and visibility_filter in (None, "shared", "all"):
        mine = [image_members.c.member_id == project]
        if member_filter != "all":
            mine.append(image_members.c.status == member_filter)
        member_of = images.c.id.in_(select(image_members.c.image_id).where(*mine))
        parts.append(and_(images.c.visibility == "shared", member_of, not_suspended))
    return parts


def owner_suspended() -> ColumnElement[bool]:
    """True when the image's owner project exists in the embedded identity service and is disabled."""
    return exists(select(1).where(projects.c.id == images.c.owner, projects.c.enabled == false()))
