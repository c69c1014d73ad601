"""Identity administration: domains, projects, users, roles, implied roles and role assignments.

Every function takes the database and the caller and starts with one `authorize` call; the rules
are the table below, named with Keystone's policy names (clients show the Forbidden text verbatim).
Results are plain dicts keyed by wire names; admin_api adds links and constant fields. Password
hashes never leave this module.

Tokens resolve their scope and roles when validated (see tokens.py), so deleting or disabling a
project, user or domain stops its tokens at once. Disabling also deletes the tokens, as Keystone
revokes them, so that enabling again does not bring old tokens back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from sqlalchemy import ColumnElement, Connection, Table, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.tables import domains, projects, role_assignments, role_implications, roles, tokens, users
from spyglass.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from spyglass.identity.bootstrap import DEFAULT_DOMAIN_ID, ROLE_NAMES, new_id
from spyglass.identity.passwords import hash_password, verify_password
from spyglass.identity.tokens import expand_roles, revoke_user_tokens

Row = dict[str, Any]
ProjectHook = Callable[[Connection, str], None]

# Called inside the write transaction, before the project row goes, with the project id. The image
# side registers here; a hook that raises aborts the whole change.
project_deleted_hooks: list[ProjectHook] = []
# Called when an enabled project is disabled, directly or by disabling its domain.
project_disabled_hooks: list[ProjectHook] = []

# ---- authorization ----------------------------------------------------------------------------


class Action(enum.StrEnum):
    LIST_DOMAINS = "identity:list_domains"
    GET_DOMAIN = "identity:get_domain"
    CREATE_DOMAIN = "identity:create_domain"
    UPDATE_DOMAIN = "identity:update_domain"
    DELETE_DOMAIN = "identity:delete_domain"
    LIST_PROJECTS = "identity:list_projects"
    GET_PROJECT = "identity:get_project"
    CREATE_PROJECT = "identity:create_project"
    UPDATE_PROJECT = "identity:update_project"
    DELETE_PROJECT = "identity:delete_project"
    LIST_USER_PROJECTS = "identity:list_user_projects"
    LIST_USERS = "identity:list_users"
    GET_USER = "identity:get_user"
    CREATE_USER = "identity:create_user"
    UPDATE_USER = "identity:update_user"
    DELETE_USER = "identity:delete_user"
    CHANGE_PASSWORD = "identity:change_password"
    LIST_ROLES = "identity:list_roles"
    GET_ROLE = "identity:get_role"
    CREATE_ROLE = "identity:create_role"
    UPDATE_ROLE = "identity:update_role"
    DELETE_ROLE = "identity:delete_role"
    LIST_ROLE_INFERENCE_RULES = "identity:list_role_inference_rules"
    LIST_IMPLIED_ROLES = "identity:list_implied_roles"
    GET_IMPLIED_ROLE = "identity:get_implied_role"
    CREATE_IMPLIED_ROLE = "identity:create_implied_role"
    DELETE_IMPLIED_ROLE = "identity:delete_implied_role"
    CREATE_GRANT = "identity:create_grant"
    CHECK_GRANT = "identity:check_grant"
    LIST_GRANTS = "identity:list_grants"
    REVOKE_GRANT = "identity:revoke_grant"
    LIST_ROLE_ASSIGNMENTS = "identity:list_role_assignments"
    GET_AUTH_PROJECTS = "identity:get_auth_projects"
    GET_AUTH_DOMAINS = "identity:get_auth_domains"


@dataclass(frozen=True)
class Target:
    """What an action is about, as far as the rules care: the user, project or domain named."""

    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None


Rule = Callable[[RequestContext, Target], bool]


def _admin(ctx: RequestContext, _t: Target) -> bool:
    return ctx.is_admin


def _admin_or_self(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (t.user_id is not None and t.user_id == ctx.user_id)


def _admin_or_token_project(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (t.project_id is not None and t.project_id == ctx.project_id)


def _admin_or_token_domain(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (t.domain_id is not None and t.domain_id == ctx.domain_id)


def _self(ctx: RequestContext, t: Target) -> bool:
    return t.user_id == ctx.user_id


def _anyone(_ctx: RequestContext, _t: Target) -> bool:
    return True


_SELF_SERVICE: dict[Action, Rule] = {
    Action.GET_DOMAIN: _admin_or_token_domain,
    Action.GET_PROJECT: _admin_or_token_project,
    Action.GET_USER: _admin_or_self,
    Action.LIST_USER_PROJECTS: _admin_or_self,
    Action.CHANGE_PASSWORD: _self,
    Action.CHECK_GRANT: _admin_or_self,
    Action.LIST_GRANTS: _admin_or_self,
    Action.LIST_ROLE_ASSIGNMENTS: _admin_or_self,
    Action.GET_AUTH_PROJECTS: _anyone,
    Action.GET_AUTH_DOMAINS: _anyone,
}
# Every other action, reads of other people's entities included, is for admins.
RULES: dict[Action, Rule] = {action: _SELF_SERVICE.get(action, _admin) for action in Action}


def authorize(ctx: RequestContext, action: Action, target: Target | None = None) -> None:
    """Checked before the target is looked up, so a refusal never confirms that it exists."""
    if not RULES[action](ctx, target or Target()):
        raise Forbidden(f"You are not authorized to perform the requested action: {action.value}.")


# ---- request bodies ---------------------------------------------------------------------------

_TEXT = {"type": ["string", "null"]}
_BOOL = {"type": "boolean"}
_REF = {"type": ["string", "null"], "maxLength": 64}
_SECRET = {"type": ["string", "null"], "maxLength": 4096}
NO_HIERARCHY = "Project hierarchies are not supported: the parent of a project is its domain."
# Resource options (immutable) and tags are not stored: only the empty forms clients send are
# accepted. `x-unsupported` is the message shown instead of the schema's own.
_OPTIONS = {"type": "object", "maxProperties": 0, "x-unsupported": "Resource options are not supported."}
_TAGS = {"type": "array", "maxItems": 0, "x-unsupported": "Tags are not supported."}
_IS_DOMAIN = {"enum": [False, None], "x-unsupported": "Projects acting as domains are not supported."}
_ROLE_DOMAIN = {"type": "null", "x-unsupported": "Domain-specific roles are not supported."}


def _name(length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": length, "pattern": r"\S"}


def _validator(fields: dict[str, Any], *required: str) -> Draft202012Validator:
    schema = {
        "type": "object",
        "properties": fields,
        "required": list(required),
        "additionalProperties": False,
    }
    return Draft202012Validator(schema)


_DOMAIN = {
    "id": _REF,
    "name": _name(64),
    "description": _TEXT,
    "enabled": _BOOL,
    "options": _OPTIONS,
    "tags": _TAGS,
}
_PROJECT = _DOMAIN | {"domain_id": _REF, "parent_id": _REF, "is_domain": _IS_DOMAIN}
_USER = {
    "id": _REF,
    "name": _name(255),
    "domain_id": _REF,
    "password": _SECRET,
    "email": {"type": ["string", "null"], "maxLength": 255},
    "description": _TEXT,
    "enabled": _BOOL,
    "default_project_id": _REF,
    "options": _OPTIONS,
}
_ROLE = {"id": _REF, "name": _name(255), "description": _TEXT, "domain_id": _ROLE_DOMAIN, "options": _OPTIONS}
_PASSWORD_CHANGE = {
    "password": {"type": "string", "maxLength": 4096},
    "original_password": {"type": "string"},
}

SCHEMAS = {
    ("domain", "create"): _validator(_DOMAIN, "name"),
    ("domain", "update"): _validator(_DOMAIN),
    ("project", "create"): _validator(_PROJECT, "name"),
    ("project", "update"): _validator(_PROJECT),
    ("user", "create"): _validator(_USER, "name"),
    ("user", "update"): _validator(_USER),
    ("role", "create"): _validator(_ROLE, "name"),
    ("role", "update"): _validator(_ROLE),
    ("user", "password"): _validator(_PASSWORD_CHANGE, "password", "original_password"),
}


def _body(body: Any, kind: str, use: str) -> Row:
    """The entity inside a `{"kind": {...}}` request body, checked against its schema."""
    entity = body.get(kind) if isinstance(body, dict) else None
    if not isinstance(entity, dict):
        raise Invalid(f"Expecting to find {kind} in request body.")
    error = best_match(SCHEMAS[kind, use].iter_errors(entity))
    if error is None:
        return dict(entity)
    field = str(error.path[0]) if error.path else kind
    message = error.schema.get("x-unsupported", error.message) if isinstance(error.schema, dict) else ""
    raise Invalid(f"Invalid input for field '{field}': {message or error.message}")


def _unchanged(row: Row, changes: Row, *fields: str) -> None:
    for field in fields:
        if changes.pop(field, row[field]) != row[field]:
            raise Invalid(f"Update of `{field}` is not allowed.")


def _flag(name: str, raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise Invalid(f"Invalid value for query parameter {name}: {raw!r} (expected true or false).")


# ---- rows -------------------------------------------------------------------------------------


def _columns(table: Table) -> list[Any]:
    return [c for c in table.c if c.name != "password_hash"]


def _plain(row: Mapping[Any, Any]) -> Row:
    # Column names come back as SQLAlchemy's str subclass, which orjson will not take as keys.
    return {str(k): v for k, v in row.items()}


def _get(conn: Connection, table: Table, kind: str, entity_id: str) -> Row:
    row = conn.execute(select(*_columns(table)).where(table.c.id == entity_id)).mappings().first()
    if row is None:
        raise NotFound(f"Could not find {kind}: {entity_id}.")
    return _plain(row)


def _referenced(conn: Connection, table: Table, kind: str, entity_id: str) -> Row:
    """An entity named in a request body: unknown is a bad request, not a missing resource."""
    try:
        return _get(conn, table, kind, entity_id)
    except NotFound as exc:
        raise Invalid(exc.message) from exc


def _list(
    conn: Connection, table: Table, params: Mapping[str, str], *where: ColumnElement[bool]
) -> list[Row]:
    """Rows matching Keystone's simple filters (exact name, domain_id, enabled); others are ignored."""
    clauses = list(where)
    for key in ("name", "domain_id", "enabled"):
        if key in params and key in table.c:
            value: Any = _flag(key, params[key]) if key == "enabled" else params[key]
            clauses.append(table.c[key] == value)
    stmt = select(*_columns(table)).where(*clauses).order_by(table.c.name, table.c.id)
    return [_plain(r) for r in conn.execute(stmt).mappings()]


def _assert_unique(conn: Connection, table: Table, kind: str, name: str, **scope: str) -> None:
    where = [table.c.name == name, *(table.c[k] == v for k, v in scope.items())]
    if conn.execute(select(exists().where(*where))).scalar():
        where_text = f" in domain {scope['domain_id']}" if "domain_id" in scope else ""
        raise Conflict(f"Conflict occurred attempting to store {kind} - duplicate name {name!r}{where_text}.")


def _store(conn: Connection, table: Table, kind: str, values: Row) -> None:
    try:
        conn.execute(insert(table).values(**values))
    except IntegrityError as exc:  # a concurrent writer won the race for the name
        raise Conflict(f"Conflict occurred attempting to store {kind} - duplicate entry.") from exc


def _modify(conn: Connection, table: Table, entity_id: str, changes: Row) -> None:
    if changes:
        try:
            conn.execute(update(table).where(table.c.id == entity_id).values(**changes))
        except IntegrityError as exc:
            raise Conflict("Conflict occurred attempting to store - duplicate entry.") from exc


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _token_domain(conn: Connection, ctx: RequestContext) -> str:
    """Where a new project or user goes when the body names no domain: the caller's, as Keystone does."""
    if ctx.domain_id:
        return ctx.domain_id
    if ctx.project_id:
        found = conn.execute(select(projects.c.domain_id).where(projects.c.id == ctx.project_id)).scalar()
        if found:
            return str(found)
    return DEFAULT_DOMAIN_ID


# ---- domains ----------------------------------------------------------------------------------


def list_domains(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_DOMAINS)
    with db.read() as conn:
        return _list(conn, domains, params)


def get_domain(db: Database, ctx: RequestContext, domain_id: str) -> Row:
    authorize(ctx, Action.GET_DOMAIN, Target(domain_id=domain_id))
    with db.read() as conn:
        return _get(conn, domains, "domain", domain_id)


def create_domain(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_DOMAIN)
    fields = _body(body, "domain", "create")
    with db.write() as conn:
        _assert_unique(conn, domains, "domain", fields["name"])
        values = {
            "id": new_id(),
            "name": fields["name"],
            "description": _text(fields.get("description")),
            "enabled": fields.get("enabled", True),
        }
        _store(conn, domains, "domain", values)
        return _get(conn, domains, "domain", values["id"])


def update_domain(db: Database, ctx: RequestContext, domain_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_DOMAIN, Target(domain_id=domain_id))
    changes = _body(body, "domain", "update")
    changes.pop("options", None)
    changes.pop("tags", None)
    with db.write() as conn:
        domain = _get(conn, domains, "domain", domain_id)
        _unchanged(domain, changes, "id")
        if "description" in changes:
            changes["description"] = _text(changes["description"])
        if changes.get("name", domain["name"]) != domain["name"]:
            _assert_unique(conn, domains, "domain", changes["name"])
        if domain["enabled"] and changes.get("enabled") is False:
            _disable_domain(conn, domain_id)
        _modify(conn, domains, domain_id, changes)
        return _get(conn, domains, "domain", domain_id)


def _disable_domain(conn: Connection, domain_id: str) -> None:
    if domain_id == DEFAULT_DOMAIN_ID:
        # The bootstrap admin lives there: disabling it would lock every administrator out.
        raise Forbidden("The default domain cannot be disabled.")
    for project_id in _ids(conn, projects, projects.c.domain_id == domain_id, projects.c.enabled):
        _disable_project(conn, project_id)
    for user_id in _ids(conn, users, users.c.domain_id == domain_id):
        revoke_user_tokens(conn, user_id)
    conn.execute(delete(tokens).where(tokens.c.domain_id == domain_id))


def delete_domain(db: Database, ctx: RequestContext, domain_id: str) -> None:
    authorize(ctx, Action.DELETE_DOMAIN, Target(domain_id=domain_id))
    with db.write() as conn:
        domain = _get(conn, domains, "domain", domain_id)
        if domain["enabled"]:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        # As in Keystone, a domain takes its projects and users with it.
        for project_id in _ids(conn, projects, projects.c.domain_id == domain_id):
            _remove_project(conn, project_id)
        for user_id in _ids(conn, users, users.c.domain_id == domain_id):
            _remove_user(conn, user_id)
        conn.execute(delete(role_assignments).where(role_assignments.c.domain_id == domain_id))
        conn.execute(delete(tokens).where(tokens.c.domain_id == domain_id))
        conn.execute(delete(domains).where(domains.c.id == domain_id))


def _ids(conn: Connection, table: Table, *where: ColumnElement[bool]) -> list[str]:
    return [str(i) for i in conn.execute(select(table.c.id).where(*where)).scalars()]


# ---- projects ---------------------------------------------------------------------------------


def list_projects(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_PROJECTS)
    with db.read() as conn:
        return _list(conn, projects, params)


def get_project(db: Database, ctx: RequestContext, project_id: str) -> Row:
    authorize(ctx, Action.GET_PROJECT, Target(project_id=project_id))
    with db.read() as conn:
        return _get(conn, projects, "project", project_id)


def create_project(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_PROJECT)
    fields = _body(body, "project", "create")
    with db.write() as conn:
        domain_id = fields.get("domain_id") or _token_domain(conn, ctx)
        _referenced(conn, domains, "domain", domain_id)
        if fields.get("parent_id") not in (None, domain_id):
            raise Invalid(f"Invalid input for field 'parent_id': {NO_HIERARCHY}")
        _assert_unique(conn, projects, "project", fields["name"], domain_id=domain_id)
        values = {
            "id": new_id(),
            "name": fields["name"],
            "domain_id": domain_id,
            "description": _text(fields.get("description")),
            "enabled": fields.get("enabled", True),
        }
        _store(conn, projects, "project", values)
        return _get(conn, projects, "project", values["id"])


def update_project(db: Database, ctx: RequestContext, project_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_PROJECT, Target(project_id=project_id))
    changes = _body(body, "project", "update")
    for ignored in ("options", "tags", "is_domain"):
        changes.pop(ignored, None)
    with db.write() as conn:
        project = _get(conn, projects, "project", project_id)
        _unchanged(project, changes, "id", "domain_id")
        if changes.pop("parent_id", None) not in (None, project["domain_id"]):
            raise Invalid(f"Invalid input for field 'parent_id': {NO_HIERARCHY}")
        if "description" in changes:
            changes["description"] = _text(changes["description"])
        if changes.get("name", project["name"]) != project["name"]:
            _assert_unique(conn, projects, "project", changes["name"], domain_id=project["domain_id"])
        if project["enabled"] and changes.get("enabled") is False:
            _disable_project(conn, project_id)
        _modify(conn, projects, project_id, changes)
        return _get(conn, projects, "project", project_id)


def _disable_project(conn: Connection, project_id: str) -> None:
    conn.execute(delete(tokens).where(tokens.c.project_id == project_id))
    for hook in project_disabled_hooks:
        hook(conn, project_id)


def delete_project(db: Database, ctx: RequestContext, project_id: str) -> None:
    authorize(ctx, Action.DELETE_PROJECT, Target(project_id=project_id))
    with db.write() as conn:
        _get(conn, projects, "project", project_id)
        _remove_project(conn, project_id)


def _remove_project(conn: Connection, project_id: str) -> None:
    for hook in project_deleted_hooks:
        hook(conn, project_id)
    conn.execute(
        update(users).where(users.c.default_project_id == project_id).values(default_project_id=None)
    )
    conn.execute(delete(role_assignments).where(role_assignments.c.project_id == project_id))
    conn.execute(delete(tokens).where(tokens.c.project_id == project_id))
    conn.execute(delete(projects).where(projects.c.id == project_id))


def list_user_projects(
    db: Database, ctx: RequestContext, user_id: str, params: Mapping[str, str]
) -> list[Row]:
    """The projects on which the user has a role (GET /v3/users/{user_id}/projects)."""
    authorize(ctx, Action.LIST_USER_PROJECTS, Target(user_id=user_id))
    with db.read() as conn:
        _get(conn, users, "user", user_id)
        return _list(
            conn, projects, params, projects.c.id.in_(_granted(user_id, role_assignments.c.project_id))
        )


def auth_projects(db: Database, ctx: RequestContext) -> list[Row]:
    """The enabled projects the caller may scope a token to (GET /v3/auth/projects)."""
    authorize(ctx, Action.GET_AUTH_PROJECTS)
    with db.read() as conn:
        enabled_domains = select(domains.c.id).where(domains.c.enabled)
        return _list(
            conn,
            projects,
            {},
            projects.c.id.in_(_granted(ctx.user_id, role_assignments.c.project_id)),
            projects.c.enabled,
            projects.c.domain_id.in_(enabled_domains),
        )


def auth_domains(db: Database, ctx: RequestContext) -> list[Row]:
    """The enabled domains the caller may scope a token to (GET /v3/auth/domains)."""
    authorize(ctx, Action.GET_AUTH_DOMAINS)
    with db.read() as conn:
        granted = domains.c.id.in_(_granted(ctx.user_id, role_assignments.c.domain_id))
        return _list(conn, domains, {}, granted, domains.c.enabled)


def _granted(user_id: str, column: Any) -> Any:
    return select(column).where(role_assignments.c.user_id == user_id, column.is_not(None))


# ---- users ------------------------------------------------------------------------------------


def list_users(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_USERS)
    with db.read() as conn:
        return _list(conn, users, params)


def get_user(db: Database, ctx: RequestContext, user_id: str) -> Row:
    authorize(ctx, Action.GET_USER, Target(user_id=user_id))
    with db.read() as conn:
        return _get(conn, users, "user", user_id)


def create_user(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_USER)
    fields = _body(body, "user", "create")
    password_hash = _hash(fields.get("password"))
    with db.write() as conn:
        domain_id = fields.get("domain_id") or _token_domain(conn, ctx)
        _referenced(conn, domains, "domain", domain_id)
        if fields.get("default_project_id"):
            _referenced(conn, projects, "project", fields["default_project_id"])
        _assert_unique(conn, users, "user", fields["name"], domain_id=domain_id)
        values = {
            "id": new_id(),
            "name": fields["name"],
            "domain_id": domain_id,
            "password_hash": password_hash,
            "email": fields.get("email"),
            "description": _text(fields.get("description")),
            "enabled": fields.get("enabled", True),
            "default_project_id": fields.get("default_project_id") or None,
        }
        _store(conn, users, "user", values)
        return _get(conn, users, "user", values["id"])


def update_user(db: Database, ctx: RequestContext, user_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_USER, Target(user_id=user_id))
    changes = _body(body, "user", "update")
    changes.pop("options", None)
    if "password" in changes:
        changes["password_hash"] = _hash(changes.pop("password"))
    with db.write() as conn:
        user = _get(conn, users, "user", user_id)
        _unchanged(user, changes, "id", "domain_id")
        if "description" in changes:
            changes["description"] = _text(changes["description"])
        if changes.get("default_project_id"):
            _referenced(conn, projects, "project", changes["default_project_id"])
        if changes.get("name", user["name"]) != user["name"]:
            _assert_unique(conn, users, "user", changes["name"], domain_id=user["domain_id"])
        if "password_hash" in changes or (user["enabled"] and changes.get("enabled") is False):
            revoke_user_tokens(conn, user_id)
        _modify(conn, users, user_id, changes)
        return _get(conn, users, "user", user_id)


def change_password(db: Database, ctx: RequestContext, user_id: str, body: Any) -> None:
    """A user changing their own password (POST /v3/users/{user_id}/password)."""
    authorize(ctx, Action.CHANGE_PASSWORD, Target(user_id=user_id))
    fields = _body(body, "user", "password")
    with db.read() as conn:
        stored = conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar()
    if not verify_password(stored, fields["original_password"]):
        raise Unauthorized("The request you have made requires authentication.")
    new_hash = _hash(fields["password"])
    with db.write() as conn:
        # Compare-and-set: a password changed meanwhile makes the original password stale.
        current = (users.c.id == user_id) & (users.c.password_hash == stored)
        if conn.execute(update(users).where(current).values(password_hash=new_hash)).rowcount != 1:
            raise Unauthorized("The request you have made requires authentication.")
        revoke_user_tokens(conn, user_id)


def _hash(password: str | None) -> str | None:
    # Argon2 is slow on purpose: callers hash before taking the write lock, never inside it.
    return None if password is None else hash_password(password)


def delete_user(db: Database, ctx: RequestContext, user_id: str) -> None:
    authorize(ctx, Action.DELETE_USER, Target(user_id=user_id))
    with db.write() as conn:
        _get(conn, users, "user", user_id)
        _remove_user(conn, user_id)


def _remove_user(conn: Connection, user_id: str) -> None:
    revoke_user_tokens(conn, user_id)
    conn.execute(delete(role_assignments).where(role_assignments.c.user_id == user_id))
    conn.execute(delete(users).where(users.c.id == user_id))


# ---- roles ------------------------------------------------------------------------------------


def list_roles(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_ROLES)
    with db.read() as conn:
        return _list(conn, roles, params)


def get_role(db: Database, ctx: RequestContext, role_id: str) -> Row:
    authorize(ctx, Action.GET_ROLE)
    with db.read() as conn:
        return _get(conn, roles, "role", role_id)


def create_role(db: Database, ctx: RequestContext, body: Any) -> Row:
    authorize(ctx, Action.CREATE_ROLE)
    fields = _body(body, "role", "create")
    with db.write() as conn:
        _assert_unique(conn, roles, "role", fields["name"])
        values = {"id": new_id(), "name": fields["name"], "description": _text(fields.get("description"))}
        _store(conn, roles, "role", values)
        return _get(conn, roles, "role", values["id"])


def update_role(db: Database, ctx: RequestContext, role_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_ROLE)
    changes = _body(body, "role", "update")
    for ignored in ("options", "domain_id"):
        changes.pop(ignored, None)
    with db.write() as conn:
        role = _get(conn, roles, "role", role_id)
        _unchanged(role, changes, "id")
        if "description" in changes:
            changes["description"] = _text(changes["description"])
        if changes.get("name", role["name"]) != role["name"]:
            _assert_standard_role_kept(role)
            _assert_unique(conn, roles, "role", changes["name"])
        _modify(conn, roles, role_id, changes)
        return _get(conn, roles, "role", role_id)


def delete_role(db: Database, ctx: RequestContext, role_id: str) -> None:
    authorize(ctx, Action.DELETE_ROLE)
    with db.write() as conn:
        _assert_standard_role_kept(_get(conn, roles, "role", role_id))
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
        by_id = {r["id"]: r for r in _list(conn, roles, {})}
        rules: dict[str, list[Row]] = {}
        for prior, implied in conn.execute(select(role_implications)):
            rules.setdefault(prior, []).append(by_id[implied])
        return [Inference(by_id[p], rules[p]) for p in sorted(rules, key=lambda p: by_id[p]["name"])]


def list_implied_roles(db: Database, ctx: RequestContext, prior_id: str) -> Inference:
    authorize(ctx, Action.LIST_IMPLIED_ROLES)
    with db.read() as conn:
        prior = _get(conn, roles, "role", prior_id)
        implied = select(role_implications.c.implied_role_id).where(
            role_implications.c.prior_role_id == prior_id
        )
        return Inference(prior, _list(conn, roles, {}, roles.c.id.in_(implied)))


def get_implied_role(db: Database, ctx: RequestContext, prior_id: str, implied_id: str) -> Inference:
    authorize(ctx, Action.GET_IMPLIED_ROLE)
    with db.read() as conn:
        return _implication(conn, prior_id, implied_id)


def _implication(conn: Connection, prior_id: str, implied_id: str) -> Inference:
    prior, implied = _get(conn, roles, "role", prior_id), _get(conn, roles, "role", implied_id)
    if implied_id not in _direct_implications(conn, prior_id):
        raise NotFound(f"{prior_id} does not imply {implied_id}.")
    return Inference(prior, [implied])


def _direct_implications(conn: Connection, prior_id: str) -> set[str]:
    stmt = select(role_implications.c.implied_role_id).where(role_implications.c.prior_role_id == prior_id)
    return {str(i) for i in conn.execute(stmt).scalars()}


def create_implied_role(db: Database, ctx: RequestContext, prior_id: str, implied_id: str) -> Inference:
    authorize(ctx, Action.CREATE_IMPLIED_ROLE)
    with db.write() as conn:
        prior, implied = _get(conn, roles, "role", prior_id), _get(conn, roles, "role", implied_id)
        if implied["name"] == "admin":
            raise Invalid("The admin role cannot be implied by another role.")
        # Would the new edge close a loop? It does if the prior role is reachable from the implied one.
        if prior_id in {r["id"] for r in expand_roles(conn, {implied_id})}:
            raise Invalid(f"{prior['name']} cannot imply {implied['name']}: that would make a cycle.")
        if implied_id not in _direct_implications(conn, prior_id):
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
        _get(conn, roles, "role", role_id)
    _get(conn, users, "user", user_id)
    _get(conn, SCOPES[scope], scope, scope_id)


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
        return _list(conn, roles, {}, roles.c.id.in_(granted))


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
    where = []
    for param, column in (
        ("user.id", role_assignments.c.user_id),
        ("scope.project.id", role_assignments.c.project_id),
        ("scope.domain.id", role_assignments.c.domain_id),
    ):
        if param in params:
            where.append(column == params[param])
    effective = "effective" in params and _present(params["effective"])
    if "role.id" in params and not effective:
        where.append(role_assignments.c.role_id == params["role.id"])
    with db.read() as conn:
        rows = conn.execute(select(role_assignments).where(*where).order_by(role_assignments.c.id)).all()
        found = [Assignment({"id": r.user_id}, *_scope_of(r), {"id": r.role_id}) for r in rows]
        if effective:
            found = _with_implied(conn, found)
            if "role.id" in params:
                found = [a for a in found if a.role["id"] == params["role.id"]]
        if "include_names" in params and _present(params["include_names"]):
            found = _named(conn, found)
        return found


def _present(raw: str) -> bool:
    """Keystone's flag parameters: present means true (`?effective`), unless given as 0 or false."""
    return raw.strip().lower() not in ("0", "false", "no", "off")


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
