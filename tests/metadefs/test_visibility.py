"""The namespace visibility rule's two forms agree: the Python predicate (`can_see`, used to find a
namespace) and its SQL twin (`visible_condition`, the namespace list), over every visibility x
owner relation x role x scope combination. The rule itself is Glance 33's: the database layer's
visibility filter (glance/db/sqlalchemy/metadef_api/namespace.py) and the get_metadef_namespace
policy (admin or reader and (project_id:%(project_id)s or public))."""

from __future__ import annotations

import itertools

from sqlalchemy import insert, select

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import metadef_namespaces
from spyglass.metadefs.visibility import VISIBILITIES, can_see, visible_condition
from spyglass.timeutil import utcnow

OWNERS = ("p-own", "p-other")
ROLES = (frozenset(), frozenset({"reader"}), frozenset({"member", "reader"}), frozenset({"admin"}))
SCOPES = ("p-own", None)


def test_python_and_sql_forms_agree(db: Database) -> None:
    rows = list(itertools.product(VISIBILITIES, OWNERS))
    with db.write() as conn:
        for n, (visibility, owner) in enumerate(rows):
            values = {"namespace": f"ns{n}", "visibility": visibility, "owner": owner, "protected": False}
            conn.execute(insert(metadef_namespaces).values(**values, created_at=utcnow()))
    for roles, scope in itertools.product(ROLES, SCOPES):
        ctx = RequestContext(user_id="u", project_id=scope, roles=roles)
        with db.read() as conn:
            listed = set(
                conn.execute(select(metadef_namespaces.c.namespace).where(visible_condition(ctx))).scalars()
            )
        shown = {f"ns{n}" for n, (visibility, owner) in enumerate(rows) if can_see(ctx, owner, visibility)}
        assert listed == shown, (roles, scope)


def test_the_rule() -> None:
    reader = RequestContext(user_id="u", project_id="p-own", roles=frozenset({"reader"}))
    assert can_see(reader, "p-own", "private")
    assert can_see(reader, "p-other", "public")
    assert not can_see(reader, "p-other", "private")
    admin = RequestContext(user_id="u", project_id="p-admin", roles=frozenset({"admin"}))
    assert can_see(admin, "p-other", "private")
    nobody = RequestContext(user_id="u", project_id="p-own", roles=frozenset())
    assert not can_see(nobody, "p-own", "public")
