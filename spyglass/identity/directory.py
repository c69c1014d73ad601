"""The identity directory: domains, projects and users, their passwords, and what a user may reach.

Every function takes the database and the caller and starts with one `authorize` call (policy.py).
Results are plain dicts keyed by wire names; admin_api adds links and constant fields. Password
hashes are written and checked here and never returned.

Tokens resolve their scope and roles when validated (see token_info.py), so deleting or disabling a
project, user or domain stops its tokens at once. Disabling also deletes the tokens, as Keystone
revokes them, so that enabling again does not bring old tokens back. The image side learns of
deleted and disabled projects through the hook lists below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Forbidden, Invalid, Unauthorized
from spyglass.identity import limits, queries
from spyglass.identity.bootstrap import DEFAULT_DOMAIN_ID
from spyglass.identity.inputs import Row, read_body, read_changes, unchanged
from spyglass.identity.passwords import hash_password, verify_password
from spyglass.identity.policy import Action, Target, authorize
from spyglass.identity.queries import (
    assert_rename_free,
    fetch,
    fetch_referenced,
    insert_named,
    read_all,
    read_one,
    save,
)
from spyglass.identity.token_queries import delete_scoped_tokens, delete_user_tokens

ProjectHook = Callable[[Connection, str], None]

# Called inside the write transaction, before the project row goes, with the project id. The image
# side registers here; a hook that raises aborts the whole change.
project_deleted_hooks: list[ProjectHook] = []
# Called when an enabled project is disabled, directly or by disabling its domain.
project_disabled_hooks: list[ProjectHook] = []
# Called inside the write transaction, once the new project's row is written.
project_created_hooks: list[ProjectHook] = []

NO_HIERARCHY = "Project hierarchies are not supported: the parent of a project is its domain."
_NOT_AUTHENTICATED = "The request you have made requires authentication."


def _disabling(row: Row, changes: Row) -> bool:
    return bool(row["enabled"] and changes.get("enabled") is False)


def _owning_domain(conn: Connection, ctx: RequestContext, fields: Row) -> str:
    """The domain a new project or user goes in: the one named, else the caller's, as in Keystone."""
    domain_id = fields.get("domain_id") or _token_domain(conn, ctx)
    fetch_referenced(conn, "domain", domain_id)
    return str(domain_id)


def _token_domain(conn: Connection, ctx: RequestContext) -> str:
    if ctx.domain_id:
        return ctx.domain_id
    if ctx.project_id:
        found = queries.project_domain(conn, ctx.project_id)
        if found:
            return found
    return DEFAULT_DOMAIN_ID


# ---- domains ----------------------------------------------------------------------------------


def list_domains(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_DOMAINS)
    return read_all(db, "domain", params)


def get_domain(db: Database, ctx: RequestContext, domain_id: str) -> Row:
    authorize(ctx, Action.GET_DOMAIN, Target(domain_id=domain_id))
    return read_one(db, "domain", domain_id)


def create_domain(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_DOMAIN)
    fields = read_body(body, "domain", "create")
    with db.write() as conn:
        return insert_named(conn, "domain", fields, enabled=fields.get("enabled", True))


def update_domain(db: Database, ctx: RequestContext, domain_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_DOMAIN, Target(domain_id=domain_id))
    changes = read_changes(body, "domain", "options", "tags")
    with db.write() as conn:
        domain = fetch(conn, "domain", domain_id)
        unchanged(domain, changes, "id")
        assert_rename_free(conn, "domain", domain, changes)
        if _disabling(domain, changes):
            _disable_domain(conn, domain_id)
        return save(conn, "domain", domain_id, changes)


def _disable_domain(conn: Connection, domain_id: str) -> None:
    if domain_id == DEFAULT_DOMAIN_ID:
        # The bootstrap admin lives there: disabling it would lock every administrator out.
        raise Forbidden("The default domain cannot be disabled.")
    for project_id in queries.project_ids_in(conn, domain_id, enabled_only=True):
        _disable_project(conn, project_id)
    for user_id in queries.user_ids_in(conn, domain_id):
        delete_user_tokens(conn, user_id)
    delete_scoped_tokens(conn, domain_id=domain_id)


def delete_domain(db: Database, ctx: RequestContext, domain_id: str) -> None:
    authorize(ctx, Action.DELETE_DOMAIN, Target(domain_id=domain_id))
    with db.write() as conn:
        domain = fetch(conn, "domain", domain_id)
        if domain["enabled"]:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        # As in Keystone, a domain takes its projects and users with it.
        for project_id in queries.project_ids_in(conn, domain_id):
            _remove_project(conn, project_id)
        for user_id in queries.user_ids_in(conn, domain_id):
            _remove_user(conn, user_id)
        limits.forget_domain(conn, domain_id)
        queries.drop_scope(conn, "domain", domain_id)


# ---- projects ---------------------------------------------------------------------------------


def list_projects(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_PROJECTS)
    return read_all(db, "project", params)


def get_project(db: Database, ctx: RequestContext, project_id: str) -> Row:
    authorize(ctx, Action.GET_PROJECT, Target(project_id=project_id))
    return read_one(db, "project", project_id)


def create_project(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_PROJECT)
    fields = read_body(body, "project", "create")
    with db.write() as conn:
        domain_id = _owning_domain(conn, ctx, fields)
        _assert_flat(fields.get("parent_id"), domain_id)
        enabled = fields.get("enabled", True)
        project = insert_named(conn, "project", fields, domain_id=domain_id, enabled=enabled)
        for hook in project_created_hooks:
            hook(conn, project["id"])
        return project


def _assert_flat(parent_id: str | None, domain_id: str) -> None:
    if parent_id not in (None, domain_id):
        raise Invalid(f"Invalid input for field 'parent_id': {NO_HIERARCHY}")


def update_project(db: Database, ctx: RequestContext, project_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_PROJECT, Target(project_id=project_id))
    changes = read_changes(body, "project", "options", "tags", "is_domain")
    with db.write() as conn:
        project = fetch(conn, "project", project_id)
        unchanged(project, changes, "id", "domain_id")
        _assert_flat(changes.pop("parent_id", None), project["domain_id"])
        assert_rename_free(conn, "project", project, changes)
        if _disabling(project, changes):
            _disable_project(conn, project_id)
        return save(conn, "project", project_id, changes)


def _disable_project(conn: Connection, project_id: str) -> None:
    delete_scoped_tokens(conn, project_id=project_id)
    for hook in project_disabled_hooks:
        hook(conn, project_id)


def delete_project(db: Database, ctx: RequestContext, project_id: str) -> None:
    authorize(ctx, Action.DELETE_PROJECT, Target(project_id=project_id))
    with db.write() as conn:
        fetch(conn, "project", project_id)
        _remove_project(conn, project_id)


def _remove_project(conn: Connection, project_id: str) -> None:
    for hook in project_deleted_hooks:
        hook(conn, project_id)
    limits.forget_project(conn, project_id)
    queries.clear_default_project(conn, project_id)
    queries.drop_scope(conn, "project", project_id)


# ---- what a user may reach --------------------------------------------------------------------


def list_user_projects(
    db: Database, ctx: RequestContext, user_id: str, params: Mapping[str, str]
) -> list[Row]:
    """The projects on which the user has a role (GET /v3/users/{user_id}/projects)."""
    authorize(ctx, Action.LIST_USER_PROJECTS, Target(user_id=user_id))
    with db.read() as conn:
        fetch(conn, "user", user_id)
        return queries.granted_projects(conn, user_id, params)


def auth_projects(db: Database, ctx: RequestContext) -> list[Row]:
    """The enabled projects the caller may scope a token to (GET /v3/auth/projects)."""
    authorize(ctx, Action.GET_AUTH_PROJECTS)
    with db.read() as conn:
        return queries.reachable_projects(conn, ctx.user_id)


def auth_domains(db: Database, ctx: RequestContext) -> list[Row]:
    """The enabled domains the caller may scope a token to (GET /v3/auth/domains)."""
    authorize(ctx, Action.GET_AUTH_DOMAINS)
    with db.read() as conn:
        return queries.reachable_domains(conn, ctx.user_id)


# ---- users ------------------------------------------------------------------------------------


def list_users(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_USERS)
    return read_all(db, "user", params)


def get_user(db: Database, ctx: RequestContext, user_id: str) -> Row:
    authorize(ctx, Action.GET_USER, Target(user_id=user_id))
    return read_one(db, "user", user_id)


def create_user(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_USER)
    fields = read_body(body, "user", "create")
    password_hash = _hash(fields.get("password"))
    with db.write() as conn:
        domain_id = _owning_domain(conn, ctx, fields)
        if fields.get("default_project_id"):
            fetch_referenced(conn, "project", fields["default_project_id"])
        return insert_named(
            conn,
            "user",
            fields,
            domain_id=domain_id,
            password_hash=password_hash,
            email=fields.get("email"),
            enabled=fields.get("enabled", True),
            default_project_id=fields.get("default_project_id") or None,
        )


def update_user(db: Database, ctx: RequestContext, user_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_USER, Target(user_id=user_id))
    changes = read_changes(body, "user", "options")
    if "password" in changes:
        changes["password_hash"] = _hash(changes.pop("password"))
    with db.write() as conn:
        user = fetch(conn, "user", user_id)
        unchanged(user, changes, "id", "domain_id")
        if changes.get("default_project_id"):
            fetch_referenced(conn, "project", changes["default_project_id"])
        assert_rename_free(conn, "user", user, changes)
        if "password_hash" in changes or _disabling(user, changes):
            delete_user_tokens(conn, user_id)
        return save(conn, "user", user_id, changes)


def change_password(db: Database, ctx: RequestContext, user_id: str, body: Any) -> None:
    """A user changing their own password (POST /v3/users/{user_id}/password)."""
    authorize(ctx, Action.CHANGE_PASSWORD, Target(user_id=user_id))
    fields = read_body(body, "user", "password")
    with db.read() as conn:
        stored = queries.password_hash(conn, user_id)
    if not verify_password(stored, fields["original_password"]):
        raise Unauthorized(_NOT_AUTHENTICATED)
    new_hash = _hash(fields["password"])
    with db.write() as conn:
        # Compare-and-set: a password changed meanwhile makes the original password stale.
        if not queries.replace_password_hash(conn, user_id, stored, new_hash):
            raise Unauthorized(_NOT_AUTHENTICATED)
        delete_user_tokens(conn, user_id)


def _hash(password: str | None) -> str | None:
    # Argon2 is slow on purpose: callers hash before taking the write lock, never inside it.
    return None if password is None else hash_password(password)


def delete_user(db: Database, ctx: RequestContext, user_id: str) -> None:
    authorize(ctx, Action.DELETE_USER, Target(user_id=user_id))
    with db.write() as conn:
        fetch(conn, "user", user_id)
        _remove_user(conn, user_id)


def _remove_user(conn: Connection, user_id: str) -> None:
    delete_user_tokens(conn, user_id)
    queries.delete_user(conn, user_id)


def project_id_named(db: Database, project_name: str, domain_name: str) -> str | None:
    """The id of the project so named in the domain so named (sharing by name), or None.

    Any project-scoped caller may ask: a share needs the member's id, which its users give out
    anyway; the member-id validation then refuses a disabled project with its usual message."""
    with db.read() as conn:
        domain_id = queries.id_by_name(conn, "domain", domain_name)
        if domain_id is None:
            return None
        return queries.id_by_name(conn, "project", project_name, domain_id)
