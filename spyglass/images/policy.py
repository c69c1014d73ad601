"""Authorization has one home: a table of named actions, consulted first by every service call.

`authorize` first applies the visibility rule (an image the caller may not see is NotFound,
never Forbidden, so its existence is not confirmed), then the action's rule (Forbidden).
The action names and the Forbidden message are Glance's, which clients show verbatim.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from spyglass.context import RequestContext
from spyglass.errors import Conflict, Forbidden, NotFound
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
    COPY_IMAGE = "copy_image"
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
    # Glance calls this policy copy_image too; here that name is taken by copy into my project.
    COPY_IMAGE_TO_STORES = "copy_image_to_stores"
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
    # Quotas (issue 16): Glance's GET /v2/info/usage has no policy of its own; any project member.
    GET_QUOTA_USAGE = "get_quota_usage"


@dataclass(frozen=True)
class Target:
    """What an action is applied to: an image (owner, visibility), the caller's own member status
    on it, and for member actions the member row's project."""

    owner: str | None = None
    visibility: str = "private"
    member_status: str | None = None
    member_id: str | None = None
    owner_suspended: bool = False
    # The image is in the recycle bin (status pending_delete).
    recycled: bool = False


Rule = Callable[[RequestContext, Target], bool]


def _reader(ctx: RequestContext, _t: Target) -> bool:
    return ctx.can_read


def _writer(ctx: RequestContext, _t: Target) -> bool:
    return ctx.can_write


def _admin(ctx: RequestContext, _t: Target) -> bool:
    return ctx.is_admin


def _owner_writer(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (ctx.can_write and t.owner is not None and t.owner == ctx.project_id)


def _owner_reader(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (ctx.can_read and t.owner is not None and t.owner == ctx.project_id)


def _owner_project(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (t.owner is not None and t.owner == ctx.project_id)


def _the_member(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (ctx.can_write and t.member_id == ctx.project_id)


RULES: dict[Action, Rule] = {
    Action.GET_IMAGE: _reader,
    Action.GET_IMAGES: _reader,
    Action.DOWNLOAD_IMAGE: _reader,
    Action.GET_MEMBER: _reader,
    Action.GET_MEMBERS: _reader,
    Action.ADD_IMAGE: _writer,
    Action.MODIFY_IMAGE: _owner_writer,
    Action.COMMUNITIZE_IMAGE: _owner_writer,
    Action.DELETE_IMAGE: _owner_writer,
    Action.UPLOAD_IMAGE: _owner_writer,
    Action.DEACTIVATE: _owner_writer,
    Action.REACTIVATE: _owner_writer,
    Action.ADD_MEMBER: _owner_writer,
    Action.DELETE_MEMBER: _owner_writer,
    Action.PUBLICIZE_IMAGE: _admin,
    Action.MODIFY_MEMBER: _the_member,
    Action.GET_IMAGE_EVENTS: _owner_reader,
    Action.GET_MEMBERSHIP_EVENTS: _reader,
    Action.GET_USAGE: _reader,
    Action.GET_ALL_USAGE: _owner_reader,
    Action.RESTORE_IMAGE: _owner_writer,
    Action.COPY_IMAGE: _writer,
    Action.GET_INVITATIONS: _reader,
    Action.GET_RECYCLE_BIN: _reader,
    Action.GET_WEBHOOKS: _reader,
    Action.MANAGE_WEBHOOKS: _writer,
    Action.GET_TRUSTED_OWNERS: _reader,
    Action.MANAGE_TRUSTED_OWNERS: _writer,
    # A member project ends its own membership (Glance's DELETE of a member stays the owner's).
    Action.LEAVE_IMAGE: _the_member,
    Action.SHARE_IN_BULK: _writer,
    Action.SET_MEMBER_EXPIRY: _owner_writer,
    Action.GET_STORES_DETAIL: _admin,
    Action.DELETE_IMAGE_LOCATION: _admin,
    Action.COPY_IMAGE_TO_STORES: _owner_writer,
    # Create or change an image owned by another project than the caller's.
    Action.SET_IMAGE_OWNER: _admin,
    Action.DOWNLOAD_DEACTIVATED: _admin,
    # Every member row of an image, not only the caller's own.
    Action.GET_ALL_MEMBERS: _owner_project,
    # Every project's images in the bin, not only the caller's project's.
    Action.GET_ALL_RECYCLE_BIN: _admin,
    Action.DEPRECATE_IMAGE: _owner_writer,
    Action.UNDEPRECATE_IMAGE: _owner_writer,
    # The owner project and admins still download an obsolete image; other projects get 410.
    Action.DOWNLOAD_OBSOLETE: _owner_project,
    Action.GET_DEPRECATION_NOTICES: _reader,
    Action.GET_FAMILY_LATEST: _reader,
    Action.TASKS_API_ACCESS: _admin,
    # Glance's defaults for these three are "" (anyone): tasks_api_access is the gate.
    Action.GET_TASK: _reader,
    Action.GET_TASKS: _reader,
    Action.ADD_TASK: _reader,
    Action.GET_ALL_TASKS: _admin,
    Action.GET_QUOTA_USAGE: _reader,
}

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
        Action.GET_QUOTA_USAGE,
    }
)
# A project reads the events of its own membership even after the membership ended, when the image
# itself is 404 to it: the visibility rule does not gate this action (spyglass.audit scopes the rows).
UNGATED = frozenset({Action.GET_MEMBERSHIP_EVENTS})
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
    if action not in UNTARGETED | UNGATED and not _visible(ctx, target):
        raise NotFound(f"No image found with ID {image_id}")
    if not _scoped(ctx) or not RULES[action](ctx, target or Target()):
        raise Forbidden(f"You are not authorized to complete {action.value} action.")
    if target is not None and target.recycled and action not in WHILE_RECYCLED:
        raise Conflict(f"Image {image_id} is in the recycle bin (pending_delete); restore it first.")


def permits(ctx: RequestContext, action: Action, target: Target) -> bool:
    """Would `authorize` let this caller perform the action on this image? (No exception.)"""
    return (action in UNGATED or _visible(ctx, target)) and _scoped(ctx) and RULES[action](ctx, target)


def _scoped(ctx: RequestContext) -> bool:
    # Images belong to projects: a domain-scoped or unscoped token acts on none (it would create
    # images without an owner, and its roles are not roles on any project).
    return ctx.project_id is not None


def _visible(ctx: RequestContext, target: Target | None) -> bool:
    return target is None or can_show(
        ctx, target.visibility, target.owner, target.member_status, target.owner_suspended, target.recycled
    )
