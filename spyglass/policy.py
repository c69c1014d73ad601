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
from spyglass.errors import Forbidden, NotFound
from spyglass.visibility import can_show


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


@dataclass(frozen=True)
class Target:
    """What an action is applied to: an image (owner, visibility), the caller's own member status
    on it, and for member actions the member row's project."""

    owner: str | None = None
    visibility: str = "private"
    member_status: str | None = None
    member_id: str | None = None
    owner_suspended: bool = False


Rule = Callable[[RequestContext, Target], bool]


def _reader(ctx: RequestContext, _t: Target) -> bool:
    return ctx.can_read


def _writer(ctx: RequestContext, _t: Target) -> bool:
    return ctx.can_write


def _admin(ctx: RequestContext, _t: Target) -> bool:
    return ctx.is_admin


def _owner_writer(ctx: RequestContext, t: Target) -> bool:
    return ctx.is_admin or (ctx.can_write and t.owner is not None and t.owner == ctx.project_id)


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
}

# Actions that need no image: only the role rule applies.
UNTARGETED = frozenset({Action.ADD_IMAGE, Action.GET_IMAGES})


def authorize(
    ctx: RequestContext, action: Action, target: Target | None = None, *, image_id: str = ""
) -> None:
    visible = target is None or can_show(
        ctx, target.visibility, target.owner, target.member_status, target.owner_suspended
    )
    if action not in UNTARGETED and not visible:
        raise NotFound(f"No image found with ID {image_id}")
    if not RULES[action](ctx, target or Target()):
        raise Forbidden(f"You are not authorized to complete {action.value} action.")
