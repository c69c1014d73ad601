"""Authorization for the identity API: the actions, named with Keystone's policy names, and their rules.

Every identity service function (directory.py, grants.py) starts with one `authorize` call, and so
does each handler of a subject token (GET, HEAD, DELETE /v3/auth/tokens: the token's own user or an
admin). Clients show the Forbidden text verbatim, so it carries Keystone's action name.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from spyglass.context import RequestContext
from spyglass.errors import Forbidden


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
    VALIDATE_TOKEN = "identity:validate_token"
    CHECK_TOKEN = "identity:check_token"
    REVOKE_TOKEN = "identity:revoke_token"
    LIST_SERVICES = "identity:list_services"
    GET_SERVICE = "identity:get_service"
    LIST_REGIONS = "identity:list_regions"
    GET_REGION = "identity:get_region"
    LIST_REGISTERED_LIMITS = "identity:list_registered_limits"
    GET_REGISTERED_LIMIT = "identity:get_registered_limit"
    CREATE_REGISTERED_LIMITS = "identity:create_registered_limits"
    UPDATE_REGISTERED_LIMIT = "identity:update_registered_limit"
    DELETE_REGISTERED_LIMIT = "identity:delete_registered_limit"
    LIST_LIMITS = "identity:list_limits"
    GET_LIMIT = "identity:get_limit"
    GET_LIMIT_MODEL = "identity:get_limit_model"
    CREATE_LIMITS = "identity:create_limits"
    UPDATE_LIMIT = "identity:update_limit"
    DELETE_LIMIT = "identity:delete_limit"


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
    # The target is the subject token's user, known only once the token is found (an unknown token is
    # a 404 for anyone: it confirms nothing).
    Action.VALIDATE_TOKEN: _admin_or_self,
    Action.CHECK_TOKEN: _admin_or_self,
    Action.REVOKE_TOKEN: _admin_or_self,
    # As Keystone: anyone reads regions, registered limits and the enforcement model; a project reads
    # its own limits (list_limits filters them; get_limit checks the limit's project).
    Action.LIST_REGIONS: _anyone,
    Action.GET_REGION: _anyone,
    Action.LIST_REGISTERED_LIMITS: _anyone,
    Action.GET_REGISTERED_LIMIT: _anyone,
    Action.GET_LIMIT_MODEL: _anyone,
    Action.LIST_LIMITS: _anyone,
    Action.GET_LIMIT: _admin_or_token_project,
}
# Every other action, reads of other people's entities included, is for admins.
RULES: dict[Action, Rule] = {action: _SELF_SERVICE.get(action, _admin) for action in Action}


def authorize(ctx: RequestContext, action: Action, target: Target | None = None) -> None:
    """Checked before the target is looked up, so a refusal never confirms that it exists."""
    if not RULES[action](ctx, target or Target()):
        raise Forbidden(f"You are not authorized to perform the requested action: {action.value}.")
