"""Who can see which namespace: one rule, in two forms that must agree.

Glance 33 lets a caller see a namespace when it is an admin, or when it holds a role on a project
(reader or above) and the namespace is public or owned by that project: the database layer's
visibility filter and the `get_metadef_namespace` policy together. `can_see` is the Python
predicate, `visible_condition` its SQL twin for the namespace list. A namespace the caller cannot
see is a 404, never a 403, wherever it is named (its objects, properties, tags, associations).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true

from spyglass.context import RequestContext
from spyglass.db.tables import metadef_namespaces

VISIBILITIES = ("public", "private")


def can_see(ctx: RequestContext, owner: str, visibility: str) -> bool:
    if ctx.is_admin:
        return True
    return ctx.can_read and (
        visibility == "public" or (ctx.project_id is not None and owner == ctx.project_id)
    )


def visible_condition(ctx: RequestContext) -> ColumnElement[bool]:
    if ctx.is_admin:
        return true()
    if not ctx.can_read:
        return false()
    public = metadef_namespaces.c.visibility == "public"
    if ctx.project_id is None:
        return public
    return or_(public, metadef_namespaces.c.owner == ctx.project_id)
