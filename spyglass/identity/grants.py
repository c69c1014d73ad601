"""Roles and what they confer: roles, implied roles, grants of a role on a project or domain, and the
role assignment listing (GET /v3/role_assignments).

Every function takes the database and the caller and starts with one `authorize` call (policy.py).
Tokens need no revoking when a grant changes: their roles are looked up on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, exists, insert, or_, select

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import domains, projects, role_assignments, role_implications, roles, users
from spyglass.errors import Forbidden, Invalid, NotFound
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
from spyglass.identity.tokens import expand_roles

# ---- roles ------------------------------------------------------------------------------------


def list_roles(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_ROLES)
    return read_all(db, roles, params)


def get_role(db: Database, ctx: RequestContext, role_id: str) -> Row:
    authorize(ctx, Action.GET_ROLE)
    return read_one(db, roles, "role", role_id)


def create_role(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_ROLE)
    fields = read_body(body, "role", "create")
    with db.write() as conn:
        return insert_named(conn, roles, "role", fields)


def update_role(db: Database, ctx: RequestContext, role_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_ROLE)
    changes = read_changes(body, "role", "options", "domain_id")
    with db.write() as conn:
        role = fetch(conn, roles, "role", role_id)
        unchanged(role, changes, "id")
        if renamed(role, changes):
            _assert_standard_role_kept(role)
        assert_rename_free(conn, roles, "role", role, changes)
        return save(conn, roles, "role", role_id, changes)


def delete_role(db: Database, ctx: RequestContext, role_id: str) -> None:
    authorize(ctx, Action.DELETE_ROLE)
    with db.write() as conn:
        _assert_standard_role_kept(fetch(conn, roles, "role", role_id))
        conn.execute(delete(role_assignments).where(role_assignments.c.role_id == role_id))
        edges = or_(
            role_implications.c.prior_role_id == role_id, role_implications.c.implied_role_id == role_id
        )
        conn.execute(delete(role_implications).where(edges))
        conn.execute(delete(roles).where(roles.c.id == role_id))


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
        by_id = {r["id"]: r for r in select_rows(conn, roles, {})}
        rules: dict[str, list[Row]] = {}
        for prior, implied in conn.execute(select(role_implications)):
            rules.setdefault(prior, []).append(by_id[implied])
        return [Inference(by_id[p], rules[p]) for p in sorted(rules, key=lambda p: by_id[p]["name"])]


def list_implied_roles(db: Database, ctx: RequestContext, prior_id: str) -> Inference:
    authorize(ctx, Action.LIST_IMPLIED_ROLES)
    with db.read() as conn:
        prior = fetch(conn, roles, "role", prior_id)
        return Inference(prior, select_rows(conn, roles, {}, roles.c.id.in_(_implied_by(prior_id))))


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
        if not _implies(conn, prior_id, implied_id):
            conn.execute(insert(role_implications).values(prior_role_id=prior_id, implied_role_id=implied_id))
        return Inference(prior, [implied])


def delete_implied_role(db: Database, ctx: RequestContext, prior_id: str, implied_id: str) -> None:
    authorize(ctx, Action.DELETE_IMPLIED_ROLE)
    with db.write() as conn:
        _implication(conn, prior_id, implied_id)
        conn.execute(
            delete(role_implications).where(
                role_implications.c.prior_role_id == prior_id,
                role_implications.c.implied_role_id == implied_id,
            )
        )


def _role_pair(conn: Connection, prior_id: str, implied_id: str) -> tuple[Row, Row]:
    return fetch(conn, roles, "role", prior_id), fetch(conn, roles, "role", implied_id)


def _implication(conn: Connection, prior_id: str, implied_id: str) -> Inference:
    """The rule that the prior role implies the other directly, or NotFound."""
    prior, implied = _role_pair(conn, prior_id, implied_id)
    if not _implies(conn, prior_id, implied_id):
        raise NotFound(f"{prior_id} does not imply {implied_id}.")
    return Inference(prior, [implied])


def _implied_by(prior_id: str) -> Any:
    """The ids of the roles the prior role implies directly, as a subquery."""
    return select(role_implications.c.implied_role_id).where(role_implications.c.prior_role_id == prior_id)


def _implies(conn: Connection, prior_id: str, implied_id: str) -> bool:
    return implied_id in {str(i) for i in conn.execute(_implied_by(prior_id)).scalars()}


# ---- grants -----------------------------------------------------------------------------------

SCOPES: dict[str, Table] = {"project": projects, "domain": domains}


def _grant_where(scope: str, scope_id: str, user_id: str, role_id: str | None = None) -> list[Any]:
    other = "domain" if scope == "project" else "project"
    where = [
        role_assignments.c.user_id == user_id,
        role_assignments.c[f"{scope}_id"] == scope_id,
        role_assignments.c[f"{other}_id"].is_(None),
    ]
    if role_id is not None:
        where.append(role_assignments.c.role_id == role_id)
    return where


def _has_grant(conn: Connection, scope: str, scope_id: str, user_id: str, role_id: str) -> bool:
    return bool(
        conn.execute(select(exists().where(*_grant_where(scope, scope_id, user_id, role_id)))).scalar()
    )


def _grant_parts(conn: Connection, scope: str, scope_id: str, user_id: str, role_id: str | None) -> None:
    if role_id is not None:
        fetch(conn, roles, "role", role_id)
    fetch(conn, users, "user", user_id)
    fetch(conn, SCOPES[scope], scope, scope_id)


def create_grant(
    db: Database, ctx: RequestContext, scope: str, scope_id: str, user_id: str, role_id: str
) -> None:
    """Give the user the role on the project or domain; granting it again changes nothing."""
    authorize(ctx, Action.CREATE_GRANT, Target(user_id=user_id))
    with db.write() as conn:
        _grant_parts(conn, scope, scope_id, user_id, role_id)
        if not _has_grant(conn, scope, scope_id, user_id, role_id):
            conn.execute(
                insert(role_assignments).values(user_id=user_id, role_id=role_id, **{f"{scope}_id": scope_id})
            )


def check_grant(
    db: Database, ctx: RequestContext, scope: str, scope_id: str, user_id: str, role_id: str
) -> None:
    authorize(ctx, Action.CHECK_GRANT, Target(user_id=user_id))
    with db.read() as conn:
        _grant_parts(conn, scope, scope_id, user_id, role_id)
        if not _has_grant(conn, scope, scope_id, user_id, role_id):
            raise _no_grant(scope_id, user_id, role_id)


def revoke_grant(
    db: Database, ctx: RequestContext, scope: str, scope_id: str, user_id: str, role_id: str
) -> None:
    """Take the role away. Tokens need no revoking: their roles are looked up on every request."""
    authorize(ctx, Action.REVOKE_GRANT, Target(user_id=user_id))
    with db.write() as conn:
        _grant_parts(conn, scope, scope_id, user_id, role_id)
        result = conn.execute(
            delete(role_assignments).where(*_grant_where(scope, scope_id, user_id, role_id))
        )
        if result.rowcount == 0:
            raise _no_grant(scope_id, user_id, role_id)


def _no_grant(scope_id: str, user_id: str, role_id: str) -> NotFound:
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user: {user_id}, target: {scope_id}."
    )


def list_grants(db: Database, ctx: RequestContext, scope: str, scope_id: str, user_id: str) -> list[Row]:
    """The roles given directly to the user on the project or domain."""
    authorize(ctx, Action.LIST_GRANTS, Target(user_id=user_id))
    with db.read() as conn:
        _grant_parts(conn, scope, scope_id, user_id, None)
        granted = select(role_assignments.c.role_id).where(*_grant_where(scope, scope_id, user_id))
        return select_rows(conn, roles, {}, roles.c.id.in_(granted))


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
    where = _assignment_filters(params, effective)
    with db.read() as conn:
        rows = conn.execute(select(role_assignments).where(*where).order_by(role_assignments.c.id)).all()
        found = [Assignment({"id": r.user_id}, *_scope_of(r), {"id": r.role_id}) for r in rows]
        if effective:
            found = _with_implied(conn, found)
            if "role.id" in params:
                found = [a for a in found if a.role["id"] == params["role.id"]]
        if "include_names" in params and present(params["include_names"]):
            found = _named(conn, found)
        return found


def _assignment_filters(params: Mapping[str, str], effective: bool) -> list[Any]:
    """The stored rows to read. An effective listing filters by role only after adding implied roles."""
    where = []
    for param, column in (
        ("user.id", role_assignments.c.user_id),
        ("scope.project.id", role_assignments.c.project_id),
        ("scope.domain.id", role_assignments.c.domain_id),
    ):
        if param in params:
            where.append(column == params[param])
    if "role.id" in params and not effective:
        where.append(role_assignments.c.role_id == params["role.id"])
    return where


def _scope_of(row: Any) -> tuple[str, Row]:
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
    domain_names = _names(conn, domains)
    role_names = _names(conn, roles)
    user_ids = {a.user["id"] for a in found}
    user_rows = conn.execute(
        select(users.c.id, users.c.name, users.c.domain_id).where(users.c.id.in_(user_ids))
    )
    project_ids = {a.target["id"] for a in found if a.scope == "project"}
    project_rows = conn.execute(
        select(projects.c.id, projects.c.name, projects.c.domain_id).where(projects.c.id.in_(project_ids))
    )

    def ref(row: Any) -> Row:
        return {
            "id": row.id,
            "name": row.name,
            "domain": {"id": row.domain_id, "name": domain_names[row.domain_id]},
        }

    people = {r.id: ref(r) for r in user_rows}
    places = {r.id: ref(r) for r in project_rows}
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


def _names(conn: Connection, table: Table) -> dict[str, str]:
    return {str(i): str(n) for i, n in conn.execute(select(table.c.id, table.c.name))}
