"""Authorization has one home: a table of named actions, consulted first by every service call.

`authorize` first applies the visibility rule (an image the caller may not see is NotFound,
never Forbidden, so its existence is not confirmed), then the action's rule (Forbidden; NotFound
when the get_image rule refuses the caller too, as Glance answers).
The action names and the Forbidden message are Glance's, which clients show verbatim.

Rules are check strings in the oslo.policy language (spyglass.images.policy_language): `RULES` holds
the defaults, equal to Glance 33's for Glance's actions; an operator's policy file (setting
`policy_file`) overrides them by name. To add an action: a member of `Action` (Glance's policy name
where Glance has the action), its default check string in `RULES` (built from the named blocks
below: READER, WRITER, ADMIN, OWNER_WRITER, OWNER_READER, OWNER_PROJECT, THE_MEMBER), and the
action in UNTARGETED if it needs no image.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spyglass.context import RequestContext
from spyglass.errors import Conflict, Forbidden, NotFound
from spyglass.images.policy_language import Creds, Rulebook, build
from spyglass.images.visibility import can_show


class Action(enum.StrEnum):
    GET_IMAGE = "get_image"
    GET_IMAGES = "get_images"
    ADD_IMAGE = "add_image"
    MODIFY_IMAGE = "modify_image"
    PUBLICIZE_IMAGE = "publicize_image"
    COMMUNITIZE_IMAGE = "communitize_image"
    DELETE_IMAGE = "delete_image"
    UPLOAD_IMAGE = "upload_image"
    DOWNLOAD_IMAGE = "download_image"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    ADD_MEMBER = "add_member"
    GET_MEMBER = "get_member"
    GET_MEMBERS = "get_members"
    MODIFY_MEMBER = "modify_member"
    DELETE_MEMBER = "delete_member"
    # Sharing safety extensions (issue 7).
    GET_IMAGE_EVENTS = "get_image_events"
    GET_MEMBERSHIP_EVENTS = "get_membership_events"
    GET_USAGE = "get_usage"
    GET_ALL_USAGE = "get_all_usage"
    RESTORE_IMAGE = "restore_image"
    # Copy an image into the caller's project (spyglass.images.project_copy).
    COPY_IMAGE_TO_PROJECT = "copy_image_to_project"
    GET_INVITATIONS = "get_invitations"
    GET_RECYCLE_BIN = "get_recycle_bin"
    GET_WEBHOOKS = "get_webhooks"
    MANAGE_WEBHOOKS = "manage_webhooks"
    # Trusted owners and leaving a share (issue 18).
    GET_TRUSTED_OWNERS = "get_trusted_owners"
    MANAGE_TRUSTED_OWNERS = "manage_trusted_owners"
    LEAVE_IMAGE = "leave_image"
    # Shares in bulk and shares that end on a date (issue 18); each pair of a bulk call is then
    # authorized as the single add_member / delete_member call.
    SHARE_IN_BULK = "share_in_bulk"
    SET_MEMBER_EXPIRY = "set_member_expiry"
    # Several stores (issue 6), named as Glance's policies name them.
    GET_STORES_DETAIL = "stores_info_detail"
    DELETE_IMAGE_LOCATION = "delete_image_location"
    # The copy-image import method (Glance's policy name).
    COPY_IMAGE_TO_STORES = "copy_image"
    # Decisions that widen an action for admins or owners, named so that they live in this table.
    SET_IMAGE_OWNER = "set_image_owner"
    DOWNLOAD_DEACTIVATED = "download_deactivated_image"
    GET_ALL_MEMBERS = "get_all_members"
    GET_ALL_RECYCLE_BIN = "get_all_recycle_bin"
    # Deprecation with a successor, and families (spyglass.images.deprecation, .families).
    DEPRECATE_IMAGE = "deprecate_image"
    UNDEPRECATE_IMAGE = "undeprecate_image"
    DOWNLOAD_OBSOLETE = "download_obsolete_image"
    GET_DEPRECATION_NOTICES = "get_deprecation_notices"
    GET_FAMILY_LATEST = "get_family_latest"
    # Tasks (spyglass.data.tasks), named as Glance's policies: the tasks API as a whole is
    # tasks_api_access (admin-only by default); get_task, get_tasks and add_task sit under it.
    TASKS_API_ACCESS = "tasks_api_access"
    GET_TASK = "get_task"
    GET_TASKS = "get_tasks"
    ADD_TASK = "add_task"
    # Every project's tasks, not only the caller's project's (Glance: an admin context).
    GET_ALL_TASKS = "get_all_tasks"
    # The v2.17 locations API, for the services that call the image service (Nova, Cinder).
    FETCH_IMAGE_LOCATION = "fetch_image_location"
    ADD_IMAGE_LOCATION = "add_image_location"
    # Glance's add_location hard-codes this one: a location in a store (not the http store) is
    # added by a service, whose `service` role is on the token or on the X-Service-Token with it.
    ADD_STORE_LOCATION = "add_store_location"
    # The image cache of API 2.14 (spyglass.data.cache), Glance's policy names: clearing the whole
    # cache is cache_delete too, as in Glance.
    CACHE_LIST = "cache_list"
    CACHE_IMAGE = "cache_image"
    CACHE_DELETE = "cache_delete"
    # Metadata definitions (spyglass.metadefs), Glance's names. The target is a namespace (its
    # owner and visibility, public or private); the namespace's own visibility rule
    # (spyglass.metadefs.visibility) gates them instead of the image's.
    GET_METADEF_NAMESPACE = "get_metadef_namespace"
    GET_METADEF_NAMESPACES = "get_metadef_namespaces"
    MODIFY_METADEF_NAMESPACE = "modify_metadef_namespace"
    ADD_METADEF_NAMESPACE = "add_metadef_namespace"
    DELETE_METADEF_NAMESPACE = "delete_metadef_namespace"
    GET_METADEF_OBJECT = "get_metadef_object"
    GET_METADEF_OBJECTS = "get_metadef_objects"
    MODIFY_METADEF_OBJECT = "modify_metadef_object"
    ADD_METADEF_OBJECT = "add_metadef_object"
    DELETE_METADEF_OBJECT = "delete_metadef_object"
    LIST_METADEF_RESOURCE_TYPES = "list_metadef_resource_types"
    GET_METADEF_RESOURCE_TYPE = "get_metadef_resource_type"
    ADD_METADEF_RESOURCE_TYPE_ASSOCIATION = "add_metadef_resource_type_association"
    REMOVE_METADEF_RESOURCE_TYPE_ASSOCIATION = "remove_metadef_resource_type_association"
    GET_METADEF_PROPERTY = "get_metadef_property"
    GET_METADEF_PROPERTIES = "get_metadef_properties"
    MODIFY_METADEF_PROPERTY = "modify_metadef_property"
    ADD_METADEF_PROPERTY = "add_metadef_property"
    REMOVE_METADEF_PROPERTY = "remove_metadef_property"
    GET_METADEF_TAG = "get_metadef_tag"
    GET_METADEF_TAGS = "get_metadef_tags"
    MODIFY_METADEF_TAG = "modify_metadef_tag"
    ADD_METADEF_TAG = "add_metadef_tag"
    ADD_METADEF_TAGS = "add_metadef_tags"
    DELETE_METADEF_TAG = "delete_metadef_tag"
    DELETE_METADEF_TAGS = "delete_metadef_tags"
    # Quotas (issue 16): Glance's GET /v2/info/usage has no policy of its own; any project member.
    GET_QUOTA_USAGE = "get_quota_usage"


@dataclass(frozen=True)
class Target:
    """What an action is applied to: an image (owner, visibility), the caller's own member status
    on it, and for member actions the member row's project. Rules see it as the dict `as_dict`
    makes (see there for the keys)."""

    owner: str | None = None
    visibility: str = "private"
    member_status: str | None = None
    member_id: str | None = None
    owner_suspended: bool = False
    # The image is in the recycle bin (status pending_delete).
    recycled: bool = False


# The building blocks of the defaults, as check strings. The Glance ones are Glance 33's
# (glance/policies/base.py); `role:reader` and `role:member` include the roles above them (admin
# implies member implies reader: see `credentials`).
ADMIN = "rule:context_is_admin"
READER = "role:reader"
WRITER = "role:member"
# The image's owner project (with the member role), or an admin: Glance's ADMIN_OR_PROJECT_MEMBER.
OWNER_WRITER = f"{ADMIN} or (role:member and project_id:%(project_id)s)"
# Glance's ADMIN_OR_PROJECT_READER.
OWNER_READER = f"{ADMIN} or (role:reader and project_id:%(project_id)s)"
# The owner project with any role, or an admin.
OWNER_PROJECT = f"{ADMIN} or project_id:%(project_id)s"
# The member project (with the member role) of a shared image, or an admin: Glance's
# ADMIN_OR_SHARED_MEMBER.
THE_MEMBER = f"{ADMIN} or (role:member and project_id:%(member_id)s)"
_REACHABLE = (
    "project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s"
    " or 'public':%(visibility)s or 'shared':%(visibility)s"
)
# Glance's ADMIN_OR_PROJECT_READER_GET_IMAGE and ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE.
GET_IMAGE_RULE = f"{ADMIN} or (role:reader and ({_REACHABLE}))"
DOWNLOAD_IMAGE_RULE = f"{ADMIN} or (role:member and ({_REACHABLE}))"
# Glance's ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE and ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER.
ADD_IMAGE_RULE = f"{ADMIN} or (role:member and project_id:%(project_id)s and project_id:%(owner)s)"
MEMBERS_RULE = f"{ADMIN} or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)"
# Glance's ADMIN_OR_PROJECT_READER_GET_NAMESPACE: a reader of the namespace's owner project, or any
# reader for a public namespace (the target's project_id is the namespace's owner).
NAMESPACE_READER = f"{ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
METADEF_ADMIN = "rule:metadef_admin"

# The default rule of each action, overridden by the rules of the same names in the policy file
# (setting policy_file). Glance's actions have Glance 33's defaults (glance/policies/image.py,
# discovery.py); Spyglass's own keep the behaviour they had before policy files.
RULES: dict[Action, str] = {
    Action.GET_IMAGE: GET_IMAGE_RULE,
    Action.GET_IMAGES: OWNER_READER,
    Action.DOWNLOAD_IMAGE: DOWNLOAD_IMAGE_RULE,
    Action.GET_MEMBER: MEMBERS_RULE,
    Action.GET_MEMBERS: MEMBERS_RULE,
    Action.ADD_IMAGE: ADD_IMAGE_RULE,
    Action.MODIFY_IMAGE: OWNER_WRITER,
    Action.COMMUNITIZE_IMAGE: OWNER_WRITER,
    Action.DELETE_IMAGE: OWNER_WRITER,
    Action.UPLOAD_IMAGE: OWNER_WRITER,
    Action.DEACTIVATE: OWNER_WRITER,
    Action.REACTIVATE: OWNER_WRITER,
    Action.ADD_MEMBER: OWNER_WRITER,
    Action.DELETE_MEMBER: OWNER_WRITER,
    Action.PUBLICIZE_IMAGE: ADMIN,
    Action.MODIFY_MEMBER: THE_MEMBER,
    Action.GET_IMAGE_EVENTS: OWNER_READER,
    Action.GET_MEMBERSHIP_EVENTS: READER,
    Action.GET_USAGE: READER,
    Action.GET_ALL_USAGE: OWNER_READER,
    Action.RESTORE_IMAGE: OWNER_WRITER,
    Action.COPY_IMAGE_TO_PROJECT: WRITER,
    Action.GET_INVITATIONS: READER,
    Action.GET_RECYCLE_BIN: READER,
    Action.GET_WEBHOOKS: READER,
    Action.MANAGE_WEBHOOKS: WRITER,
    Action.GET_TRUSTED_OWNERS: READER,
    Action.MANAGE_TRUSTED_OWNERS: WRITER,
    # A member project ends its own membership (Glance's DELETE of a member stays the owner's).
    Action.LEAVE_IMAGE: THE_MEMBER,
    Action.SHARE_IN_BULK: WRITER,
    Action.SET_MEMBER_EXPIRY: OWNER_WRITER,
    # Glance: admin or the service role (service_api).
    Action.GET_STORES_DETAIL: f"{ADMIN} or rule:service_api",
    Action.DELETE_IMAGE_LOCATION: ADMIN,
    Action.COPY_IMAGE_TO_STORES: ADMIN,
    # Create or change an image owned by another project than the caller's.
    Action.SET_IMAGE_OWNER: ADMIN,
    Action.DOWNLOAD_DEACTIVATED: ADMIN,
    # Every member row of an image, not only the caller's own.
    Action.GET_ALL_MEMBERS: OWNER_PROJECT,
    # Every project's images in the bin, not only the caller's project's.
    Action.GET_ALL_RECYCLE_BIN: ADMIN,
    Action.DEPRECATE_IMAGE: OWNER_WRITER,
    Action.UNDEPRECATE_IMAGE: OWNER_WRITER,
    # The owner project and admins still download an obsolete image; other projects get 410.
    Action.DOWNLOAD_OBSOLETE: OWNER_PROJECT,
    Action.GET_DEPRECATION_NOTICES: READER,
    Action.GET_FAMILY_LATEST: READER,
    Action.TASKS_API_ACCESS: ADMIN,
    # Glance's defaults for these three are "" (anyone): tasks_api_access is the gate.
    Action.GET_TASK: READER,
    Action.GET_TASKS: READER,
    Action.ADD_TASK: READER,
    Action.GET_ALL_TASKS: ADMIN,
    # Glance 33: service_api, and service_api or a member of the image's owner project.
    Action.FETCH_IMAGE_LOCATION: "rule:service_api",
    Action.ADD_IMAGE_LOCATION: "rule:service_api or (role:member and project_id:%(project_id)s)",
    # The service role on the token or on its X-Service-Token (`service_roles`).
    Action.ADD_STORE_LOCATION: "role:service or service_roles:service",
    # Glance 33: cache_list, cache_image and cache_delete are rule:context_is_admin.
    Action.CACHE_LIST: ADMIN,
    Action.CACHE_IMAGE: ADMIN,
    Action.CACHE_DELETE: ADMIN,
    # Metadata definitions: Glance 33's defaults (glance/policies/metadef.py), reads by readers of
    # the owner project or of a public namespace, every write `rule:metadef_admin`.
    Action.GET_METADEF_NAMESPACES: OWNER_READER,
    Action.GET_METADEF_NAMESPACE: NAMESPACE_READER,
    Action.GET_METADEF_OBJECT: NAMESPACE_READER,
    Action.GET_METADEF_OBJECTS: NAMESPACE_READER,
    Action.LIST_METADEF_RESOURCE_TYPES: NAMESPACE_READER,
    Action.GET_METADEF_RESOURCE_TYPE: NAMESPACE_READER,
    Action.GET_METADEF_PROPERTY: NAMESPACE_READER,
    Action.GET_METADEF_PROPERTIES: NAMESPACE_READER,
    Action.GET_METADEF_TAG: NAMESPACE_READER,
    Action.GET_METADEF_TAGS: NAMESPACE_READER,
    Action.ADD_METADEF_NAMESPACE: METADEF_ADMIN,
    Action.MODIFY_METADEF_NAMESPACE: METADEF_ADMIN,
    Action.DELETE_METADEF_NAMESPACE: METADEF_ADMIN,
    Action.ADD_METADEF_OBJECT: METADEF_ADMIN,
    Action.MODIFY_METADEF_OBJECT: METADEF_ADMIN,
    Action.DELETE_METADEF_OBJECT: METADEF_ADMIN,
    Action.ADD_METADEF_RESOURCE_TYPE_ASSOCIATION: METADEF_ADMIN,
    Action.REMOVE_METADEF_RESOURCE_TYPE_ASSOCIATION: METADEF_ADMIN,
    Action.ADD_METADEF_PROPERTY: METADEF_ADMIN,
    Action.MODIFY_METADEF_PROPERTY: METADEF_ADMIN,
    Action.REMOVE_METADEF_PROPERTY: METADEF_ADMIN,
    Action.ADD_METADEF_TAG: METADEF_ADMIN,
    Action.ADD_METADEF_TAGS: METADEF_ADMIN,
    Action.MODIFY_METADEF_TAG: METADEF_ADMIN,
    Action.DELETE_METADEF_TAG: METADEF_ADMIN,
    Action.DELETE_METADEF_TAGS: METADEF_ADMIN,
    Action.GET_QUOTA_USAGE: READER,
}
# Rules the actions' rules refer to, named as Glance names them (glance/policies/base.py).
BASE_RULES = {
    "context_is_admin": "role:admin",
    "default": "",
    "service_api": "role:service or role:admin",
    "metadef_admin": "rule:context_is_admin",
    "metadef_default": "",
}

# The metadata definition actions: their target is a namespace, not an image.
METADEF_ACTIONS = frozenset(a for a in Action if "metadef" in a.value)

# Actions that need no image: only the role rule applies.
UNTARGETED = frozenset(
    {
        Action.ADD_IMAGE,
        Action.GET_IMAGES,
        Action.GET_INVITATIONS,
        Action.GET_RECYCLE_BIN,
        Action.GET_WEBHOOKS,
        Action.MANAGE_WEBHOOKS,
        Action.GET_TRUSTED_OWNERS,
        Action.MANAGE_TRUSTED_OWNERS,
        Action.SHARE_IN_BULK,
        Action.GET_STORES_DETAIL,
        Action.SET_IMAGE_OWNER,
        Action.GET_ALL_RECYCLE_BIN,
        Action.GET_DEPRECATION_NOTICES,
        Action.GET_FAMILY_LATEST,
        Action.TASKS_API_ACCESS,
        Action.GET_TASK,
        Action.GET_TASKS,
        Action.ADD_TASK,
        Action.GET_ALL_TASKS,
        Action.CACHE_LIST,
        Action.GET_QUOTA_USAGE,
    }
)
# A project reads the events of its own membership even after the membership ended, when the image
# itself is 404 to it: the visibility rule does not gate this action (spyglass.audit scopes the rows).
# Nor does it gate the metadata definition actions: a namespace's visibility is spyglass.metadefs'.
UNGATED = frozenset({Action.GET_MEMBERSHIP_EVENTS}) | METADEF_ACTIONS
# What may still be done to an image in the recycle bin; anything else is a conflict until restored.
WHILE_RECYCLED = frozenset(
    {
        Action.GET_IMAGE,
        Action.GET_MEMBERS,
        Action.GET_MEMBER,
        Action.DOWNLOAD_IMAGE,
        Action.DELETE_IMAGE,
        Action.RESTORE_IMAGE,
        Action.GET_IMAGE_EVENTS,
        Action.GET_MEMBERSHIP_EVENTS,
        Action.GET_USAGE,
        Action.GET_ALL_USAGE,
    }
)


def authorize(
    ctx: RequestContext, action: Action, target: Target | None = None, *, image_id: str = ""
) -> None:
    gated = action not in UNTARGETED and action not in UNGATED
    if gated and not _visible(ctx, target):
        raise NotFound(f"No image found with ID {image_id}")
    if not _scoped(ctx):
        raise Forbidden(f"You are not authorized to complete {action.value} action.")
    creds = credentials(ctx)
    if not _allows(action, ctx, target, creds):
        # As Glance: when get_image refuses too, the caller may not know the image exists.
        if gated and target is not None and not _allows(Action.GET_IMAGE, ctx, target, creds):
            raise NotFound(f"No image found with ID {image_id}")
        raise Forbidden(f"You are not authorized to complete {action.value} action.")
    if target is not None and target.recycled and action not in WHILE_RECYCLED:
        raise Conflict(f"Image {image_id} is in the recycle bin (pending_delete); restore it first.")


def permits(ctx: RequestContext, action: Action, target: Target) -> bool:
    """Would `authorize` let this caller perform the action on this image? (No exception.)"""
    if action not in UNTARGETED and action not in UNGATED and not _visible(ctx, target):
        return False
    return _scoped(ctx) and _allows(action, ctx, target, credentials(ctx))


def use_policy_file(path: Path | None) -> Rulebook:
    """Make the defaults overridden by this policy file (None: the defaults alone) the rules of this
    process, and return them. Read and compiled once per file; PolicyFileError if it cannot be used."""
    global _active
    _active = _rulebook(path)
    return _active


@functools.lru_cache(maxsize=8)
def _rulebook(path: Path | None) -> Rulebook:
    return build({**BASE_RULES, **{action.value: check for action, check in RULES.items()}}, path)


_active: Rulebook | None = None


def _allows(action: Action, ctx: RequestContext, target: Target | None, creds: Creds) -> bool:
    rulebook = _active or use_policy_file(None)
    return rulebook.allows(action.value, as_dict(ctx, action, target), creds)


# Keystone's default role hierarchy; the roles of a token from the embedded identity service
# already include it, this covers callers whose roles were not expanded.
_IMPLIED = {"admin": ("member", "reader"), "member": ("reader",)}


def credentials(ctx: RequestContext) -> dict[str, Any]:
    """The caller as rules see it: `role:` tests `roles`, `project_id:...`, `user_id:...` and
    `domain_id:...` test the token's scope and user."""
    roles = {role.lower() for role in ctx.roles}
    for role in roles & _IMPLIED.keys():
        roles.update(_IMPLIED[role])
    return {
        "roles": roles,
        "project_id": ctx.project_id,
        "user_id": ctx.user_id,
        "domain_id": ctx.domain_id,
        # The roles of the X-Service-Token sent with the request (Nova's and Cinder's service users).
        "service_roles": sorted(role.lower() for role in ctx.service_roles),
    }


def as_dict(ctx: RequestContext, action: Action, target: Target | None) -> dict[str, Any]:
    """The target as rules see it, with Glance's keys: `project_id` and `owner` (the image's owner
    project), `visibility`, `member_id` (the member project a member call is about; for other
    calls on a shared image, the caller's project when it is a member, as Glance sets it), and
    Spyglass's `member_status` (the caller's status on the image), `owner_suspended` and
    `recycled` ("True"/"False"). Actions on no image get the caller's own project as owner, as
    Glance's list and create do. Keys without a value are left out: a check on them fails."""
    if target is None or action in UNTARGETED:
        return {"project_id": ctx.project_id, "owner": ctx.project_id, "visibility": "private"}
    member_id = target.member_id
    if member_id is None and target.visibility == "shared" and target.member_status is not None:
        member_id = ctx.project_id
    found = {
        "project_id": target.owner,
        "owner": target.owner,
        "visibility": target.visibility,
        "member_id": member_id,
        "member_status": target.member_status,
        "owner_suspended": target.owner_suspended,
        "recycled": target.recycled,
    }
    return {key: value for key, value in found.items() if value is not None}


def _scoped(ctx: RequestContext) -> bool:
    # Images belong to projects: a domain-scoped or unscoped token acts on none (it would create
    # images without an owner, and its roles are not roles on any project).
    return ctx.project_id is not None


def _visible(ctx: RequestContext, target: Target | None) -> bool:
    return target is None or can_show(
        ctx, target.visibility, target.owner, target.member_status, target.owner_suspended, target.recycled
    )
