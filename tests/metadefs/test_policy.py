"""The metadata definition actions in the one policy table (spyglass.images.policy) have Glance 33's
defaults (glance/policies/metadef.py): reads `admin or (reader and (project_id:%(project_id)s or
'public':%(visibility)s))`, the namespace list `admin or (reader and project_id:%(project_id)s)`,
every write `rule:metadef_admin`."""

from __future__ import annotations

import pytest

from spyglass.context import RequestContext
from spyglass.errors import Forbidden
from spyglass.images.policy import METADEF_ACTIONS, Action, Target, authorize

READS = {a for a in METADEF_ACTIONS if a.value.startswith(("get_", "list_"))}
WRITES = METADEF_ACTIONS - READS


def _ctx(*roles: str, project: str | None = "p1") -> RequestContext:
    return RequestContext(user_id="u", project_id=project, roles=frozenset(roles))


def _allowed(ctx: RequestContext, action: Action, target: Target) -> bool:
    try:
        authorize(ctx, action, target)
    except Forbidden:
        return False
    return True


def test_every_glance_metadef_policy_is_there() -> None:
    assert {a.value for a in METADEF_ACTIONS} == {
        *(f"{verb}_metadef_namespace" for verb in ("get", "modify", "add", "delete")),
        "get_metadef_namespaces",
        *(f"{verb}_metadef_object" for verb in ("get", "modify", "add", "delete")),
        "get_metadef_objects",
        "list_metadef_resource_types",
        "get_metadef_resource_type",
        "add_metadef_resource_type_association",
        "remove_metadef_resource_type_association",
        *(f"{verb}_metadef_property" for verb in ("get", "modify", "add", "remove")),
        "get_metadef_properties",
        *(f"{verb}_metadef_tag" for verb in ("get", "modify", "add", "delete")),
        "get_metadef_tags",
        "add_metadef_tags",
        "delete_metadef_tags",
    }


@pytest.mark.parametrize("action", sorted(WRITES))
def test_writes_are_admin_only(action: Action) -> None:
    own = Target(owner="p1", visibility="private")
    assert _allowed(_ctx("admin"), action, own)
    assert not _allowed(_ctx("member", "reader"), action, own)
    assert not _allowed(_ctx("reader"), action, Target(owner="p1", visibility="public"))


@pytest.mark.parametrize("action", sorted(READS - {Action.GET_METADEF_NAMESPACES}))
def test_reads_of_a_namespace(action: Action) -> None:
    assert _allowed(_ctx("reader"), action, Target(owner="p1", visibility="private"))
    assert _allowed(_ctx("reader"), action, Target(owner="p2", visibility="public"))
    assert not _allowed(_ctx("reader"), action, Target(owner="p2", visibility="private"))
    assert _allowed(_ctx("admin"), action, Target(owner="p2", visibility="private"))
    assert not _allowed(_ctx(), action, Target(owner="p1", visibility="public"))
    # Glance's metadef policies are project-scoped: a token without a project does nothing.
    assert not _allowed(_ctx("admin", project=None), action, Target(owner="p2", visibility="public"))
