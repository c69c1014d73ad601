"""Roles and what they confer: roles, implied roles, grants of a role on a project or domain, and the
role assignment listing (GET /v3/role_assignments).

Every function takes the database and the caller and starts with one `authorize` call (policy.py).
Tokens need no revoking when a grant changes: their roles are looked up on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Forbidden, Invalid, NotFound
from spyglass.identity import role_queries
from spyglass.identity.bootstrap import ROLE_NAMES
from spyglass.identity.inputs import Row, present, read_body, read_changes, unchanged
from spyglass.identity.policy import Action, Target, authorize
from spyglass.identity.queries import (
    assert_rename_free,
    fetch,
    insert_named,
    read_all,
    read_one,
    renamed,
    save,
    select_rows,
)
from spyglass.identity.role_queries import Scope, StoredAssignment, expand_roles

# ---- roles ------------------------------------------------------------------------------------


def list_roles(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_ROLES)
    return read_all(db, "role", params)


def get_role(db: Database, ctx: RequestContext, role_id: str) -> Row:
    authorize(ctx, Action.GET_ROLE)
    return read_one(db, "role", role_id)


def create_role(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_ROLE)
    fields = read_body(body, "role", "create")
    with db.write() as conn:
        return insert_named(conn, "role", fields)


def update_role(db: Database, ctx: RequestContext, role_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_ROLE)
    changes = read_changes(body, "role", "options", "domain_id")
    with db.write() as conn:
        role = fetch(conn, "role", role_id)
        unchanged(role, changes, "id")
        if renamed(role, changes):
            _assert_standard_role_kept(role)
        assert_rename_free(conn, "role", role, changes)
        return save(conn, "role", role_id, changes)


def delete_role(db: Database, ctx: RequestContext, role_id: str) -> None:
    authorize(ctx, Action.DELETE_ROLE)
    with db.write() as conn:
        _assert_standard_role_kept(fetch(conn, "role", role_id))
        role_queries.delete_role(conn, role_id)


def _assert_standard_role_kept(role: Row) -> None:
    # Authorization everywhere (RequestContext.is_admin, can_write, can_read) goes by these names.
    if role["name"] in ROLE_NAMES:
        raise Forbidden(f"The standard role {role['name']!r} cannot be renamed or deleted.")


# ---- implied roles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inference:
    prior: Row
    implied: list[Row]


def list_role_inferences(db: Database, ctx: RequestContext) -> list[Inference]:
    authorize(ctx, Action.LIST_ROLE_INFERENCE_RULES)
    with db.read() as conn:
        by_id = {r["id"]: r for r in select_rows(conn, "role", {})}
        rules: dict[str, list[Row]] = {}
        for prior, implied in role_queries.implications(conn):
            rules.setdefault(prior, []).append(by_id[implied])
        return [Inference(by_id[p], rules[p]) for p in sorted(rules, key=lambda p: by_id[p]["name"])]


def list_implied_roles(db: Database, ctx: RequestContext, prior_id: str) -> Inference:
    authorize(ctx, Action.LIST_IMPLIED_ROLES)
    with db.read() as conn:
        prior = fetch(conn, "role", prior_id)
        return Inference(prior, role_queries.implied_roles(conn, prior_id))


def get_implied_role(db: Database, ctx: RequestContext, prior_id: str, implied_id: str) -> Inference:
    authorize(ctx, Action.GET_IMPLIED_ROLE)
    with db.read() as conn:
        return _implication(conn, prior_id, implied_id)


def create_implied_role(db: Database, ctx: RequestContext, prior_id: str, implied_id: str) -> Inference:
    authorize(ctx, Action.CREATE_IMPLIED_ROLE)
    with db.write() as conn:
        prior, implied = _role_pair(conn, prior_id, implied_id)
        if implied["name"] == "admin":
            raise Invalid("The admin role cannot be implied by another role.")
        # Would the new edge close a loop? It does if the prior role is reachable from the implied one.
        if prior_id in {r["id"] for r in expand_roles(conn, {implied_id})}:
            raise Invalid(f"{prior['name']} cannot imply {implied['name']}: that would make a cycle.")
        if not role_queries.implies(conn, prior_id, implied_id):
            role_queries.add_implication(conn, prior_id, implied_id)
        return Inference(prior, [implied])


def delete_implied_role(db: Database, ctx: RequestContext, prior_id: str, implied_id: str) -> None:
    authorize(ctx, Action.DELETE_IMPLIED_ROLE)
    with db.write() as conn:
        _implication(conn, prior_id, implied_id)
        role_queries.delete_implication(conn, prior_id, implied_id)


def _role_pair(conn: Connection, prior_id: str, implied_id: str) -> tuple[Row, Row]:
    return fetch(conn, "role", prior_id), fetch(conn, "role", implied_id)


def _implication(conn: Connection, prior_id: str, implied_id: str) -> Inference:
    """The rule that the prior role implies the other directly, or NotFound."""
    prior, implied = _role_pair(conn, prior_id, implied_id)
    if not role_queries.implies(conn, prior_id, implied_id):
        raise NotFound(f"{prior_id} does not imply {implied_id}.")
    return Inference(prior, [implied])


# ---- grants -----------------------------------------------------------------------------------


def _grant_parts(conn: Connection, scope: Scope, scope_id: str, user_id: str, role_id: str | None) -> None:
    if role_id is not None:
        fetch(conn, "role", role_id)
    fetch(conn, "user", user_id)
    fetch(conn, scope, scope_id)


def create_grant(
    db: Database, ctx: RequestContext, scope: Scope, scope_id: str, user_id: str, role_id: str
) -> None:
    """Give the user the role on the project or domain; granting it again changes nothing."""
    authorize(ctx, Action.CREATE_GRANT, Target(user_id=user_id))
    with db.write() as conn:
        _grant_parts(conn, scope, scope_id, user_id, role_id)
        if not role_queries.has_grant(conn, scope, scope_id, user_id, role_id):
            role_queries.add_grant(conn, scope, scope_id, user_id, role_id)


def check_grant(
    db: Database, ctx: RequestContext, scope: Scope, scope_id: str, user_id: str, role_id: str
) -> None:
    authorize(ctx, Action.CHECK_GRANT, Target(user_id=user_id))
    with db.read() as conn:
        _grant_parts(conn, scope, scope_id, user_id, role_id)
        if not role_queries.has_grant(conn, scope, scope_id, user_id, role_id):
            raise _no_grant(scope_id, user_id, role_id)


def revoke_grant(
    db: Database, ctx: RequestContext, scope: Scope, scope_id: str, user_id: str, role_id: str
) -> None:
    """Take the role away. Tokens need no revoking: their roles are looked up on every request."""
    authorize(ctx, Action.REVOKE_GRANT, Target(user_id=user_id))
    with db.write() as conn:
        _grant_parts(conn, scope, scope_id, user_id, role_id)
        if not role_queries.delete_grant(conn, scope, scope_id, user_id, role_id):
            raise _no_grant(scope_id, user_id, role_id)


def _no_grant(scope_id: str, user_id: str, role_id: str) -> NotFound:
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user: {user_id}, target: {scope_id}."
    )


def list_grants(db: Database, ctx: RequestContext, scope: Scope, scope_id: str, user_id: str) -> list[Row]:
    """The roles given directly to the user on the project or domain."""
    authorize(ctx, Action.LIST_GRANTS, Target(user_id=user_id))
    with db.read() as conn:
        _grant_parts(conn, scope, scope_id, user_id, None)
        return role_queries.granted_roles(conn, scope, scope_id, user_id)


# ---- role assignments -------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """One row of GET /v3/role_assignments. `prior_role_id` is set when the role is implied."""

    user: Row
    scope: str  # "project" or "domain"
    target: Row
    role: Row
    prior_role_id: str | None = None


def list_role_assignments(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Assignment]:
    user_id = params.get("user.id")
    authorize(ctx, Action.LIST_ROLE_ASSIGNMENTS, Target(user_id=user_id))
    # Groups, system scope and inheritance do not exist here, so asking for them finds nothing.
    if {"group.id", "scope.system", "scope.OS-INHERIT:inherited_to"} & params.keys():
        return []
    effective = "effective" in params and present(params["effective"])
    with db.read() as conn:
        rows = role_queries.assignments(
            conn,
            user_id=params.get("user.id"),
            project_id=params.get("scope.project.id"),
            domain_id=params.get("scope.domain.id"),
            # An effective listing filters by role only after adding implied roles.
            role_id=None if effective else params.get("role.id"),
        )
        found = [Assignment({"id": r.user_id}, *_scope_of(r), {"id": r.role_id}) for r in rows]
        if effective:
            found = _with_implied(conn, found)
            if "role.id" in params:
                found = [a for a in found if a.role["id"] == params["role.id"]]
        if "include_names" in params and present(params["include_names"]):
            found = _named(conn, found)
        return found


def _scope_of(row: StoredAssignment) -> tuple[str, Row]:
    return ("project", {"id": row.project_id}) if row.project_id else ("domain", {"id": row.domain_id})


def _with_implied(conn: Connection, found: list[Assignment]) -> list[Assignment]:
    """Add the roles each assignment implies; an effective role appears once per user and target."""
    closure = {rid: expand_roles(conn, {rid}) for rid in {a.role["id"] for a in found}}
    seen = {(a.user["id"], a.scope, a.target["id"], a.role["id"]) for a in found}
    result = list(found)
    for a in found:
        for role in closure[a.role["id"]]:
            key = (a.user["id"], a.scope, a.target["id"], role["id"])
            if key not in seen:
                seen.add(key)
                result.append(Assignment(a.user, a.scope, a.target, {"id": role["id"]}, a.role["id"]))
    return result


def _named(conn: Connection, found: list[Assignment]) -> list[Assignment]:
    domain_names = role_queries.names(conn, "domain")
    role_names = role_queries.names(conn, "role")
    user_rows = role_queries.domain_refs(conn, "user", {a.user["id"] for a in found})
    project_ids = {a.target["id"] for a in found if a.scope == "project"}
    project_rows = role_queries.domain_refs(conn, "project", project_ids)

    def ref(entity_id: str, name: str, domain_id: str) -> Row:
        return {"id": entity_id, "name": name, "domain": {"id": domain_id, "name": domain_names[domain_id]}}

    people = {r[0]: ref(*r) for r in user_rows}
    places = {r[0]: ref(*r) for r in project_rows}
    places |= {d: {"id": d, "name": n} for d, n in domain_names.items()}
    return [
        Assignment(
            people[a.user["id"]],
            a.scope,
            places[a.target["id"]],
            {"id": a.role["id"], "name": role_names[a.role["id"]]},
            a.prior_role_id,
        )
        for a in found
    ]
