"""Shares in bulk: add or remove many (image, member) pairs in one call.

`POST /v2/shared-images/bulk` with `{"action": "add" | "remove", "images": [...], "members": [...],
"atomic": false, "expires_at": null}` applies the single-pair service function to every pair of
images x members, so each pair gets exactly the rules of its single call (authorization, an
invisible image reported as 404, validation, quota, impact safeguards and their override, events
and webhooks). All pairs run in one transaction, each in a savepoint: a failed pair leaves nothing
behind. With `atomic: true` one failed pair rolls back the whole call, and the pairs that would
have succeeded are reported as NOT_APPLIED.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Invalid, SpyglassError, TooLarge
from spyglass.images.catalog import load_authorized
from spyglass.images.impact import GLANCE, Safeguards
from spyglass.images.policy import Action, authorize
from spyglass.sharing import bulk_sets, expiry, members, project_sync, queries

MAX_PAIRS = 10_000
ACTIONS = ("add", "remove")
# The outcome of a pair that would have succeeded, in an atomic call that another pair failed.
NOT_APPLIED = "not_applied"


@dataclass(frozen=True)
class BulkRequest:
    action: str
    images: list[str]
    members: list[str]
    atomic: bool
    expires_at: str | None

    def pairs(self) -> list[tuple[str, str]]:
        return [(image_id, member_id) for image_id in self.images for member_id in self.members]


@dataclass(frozen=True)
class PairResult:
    image_id: str
    member_id: str
    # None: done (or, in an atomic call that failed, not applied).
    error: SpyglassError | None = None


@dataclass(frozen=True)
class BulkOutcome:
    request: BulkRequest
    applied: bool
    results: list[PairResult]


class _RollBack(Exception):
    def __init__(self, results: list[PairResult]) -> None:
        super().__init__("atomic bulk call failed")
        self.results = results


def share_in_bulk(
    db: Database,
    ctx: RequestContext,
    body: Any,
    *,
    quota: int,
    validate: bool,
    guard: Safeguards = GLANCE,
) -> BulkOutcome:
    request = checked(ctx, body)
    try:
        with db.write() as conn:
            results = [
                result
                for image_id in request.images
                for result in _image(conn, ctx, request, image_id, quota, validate, guard)
            ]
            if request.atomic and any(r.error for r in results):
                raise _RollBack(results)
    except _RollBack as failed:
        return BulkOutcome(request, False, failed.results)
    return BulkOutcome(request, True, results)


def checked(ctx: RequestContext, body: Any) -> BulkRequest:
    """The call, authorized and parsed: what a handler checks before it does anything costly."""
    authorize(ctx, Action.SHARE_IN_BULK)
    return parse(body)


def new_members(db: Database, ctx: RequestContext, request: BulkRequest) -> list[str]:
    """The members of an `add` worth reading from an external Keystone before the call: project
    ids (project_sync.is_project_id) not yet members of an image of the call that the caller may
    add members to. None at all when the caller may add members to none of its images."""
    wanted = [m for m in request.members if project_sync.is_project_id(m)]
    if request.action != "add" or not wanted:
        return []
    new: set[str] = set()
    with db.read() as conn:
        for image_id in request.images:
            try:
                record = load_authorized(conn, ctx, image_id, Action.ADD_MEMBER)
            except SpyglassError:
                continue
            if record.visibility == "shared":
                existing = queries.members_among(conn, image_id, wanted)
                new.update(m for m in wanted if m not in existing)
            if len(new) == len(wanted):
                break
    return [m for m in wanted if m in new]


def _image(
    conn: Connection,
    ctx: RequestContext,
    request: BulkRequest,
    image_id: str,
    quota: int,
    validate: bool,
    guard: Safeguards,
) -> list[PairResult]:
    """The pairs of one image, judged together (spyglass.sharing.bulk_sets)."""

    def single(member_id: str) -> SpyglassError | None:
        return _apply(conn, ctx, request, (image_id, member_id), quota, validate, guard).error

    try:
        with conn.begin_nested():
            if request.action == "add":
                outcomes = bulk_sets.add(
                    conn,
                    ctx,
                    image_id,
                    request.members,
                    single,
                    quota=quota,
                    validate=validate,
                    expires_at=request.expires_at,
                )
            else:
                outcomes = bulk_sets.remove(conn, ctx, image_id, request.members, single, guard)
    except SpyglassError as exc:
        outcomes = [exc] * len(request.members)
    return [
        PairResult(image_id, member_id, outcome if isinstance(outcome, SpyglassError) else None)
        for member_id, outcome in zip(request.members, outcomes, strict=True)
    ]


def _apply(
    conn: Connection,
    ctx: RequestContext,
    request: BulkRequest,
    pair: tuple[str, str],
    quota: int,
    validate: bool,
    guard: Safeguards,
) -> PairResult:
    image_id, member_id = pair
    try:
        with conn.begin_nested():
            if request.action == "add":
                body = {"member": member_id, expiry.FIELD: request.expires_at}
                members.add_member_in(conn, ctx, image_id, body, quota=quota, validate=validate)
            else:
                members.delete_member_in(conn, ctx, image_id, member_id, guard)
    except SpyglassError as exc:
        return PairResult(image_id, member_id, exc)
    return PairResult(image_id, member_id)


def parse(body: Any) -> BulkRequest:
    if not isinstance(body, dict):
        raise Invalid("The body must be a JSON object.")
    unknown = set(body) - {"action", "images", "members", "atomic", expiry.FIELD}
    if unknown:
        raise Invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    action = body.get("action")
    if action not in ACTIONS:
        raise Invalid('action must be "add" or "remove".')
    atomic = body.get("atomic", False)
    if not isinstance(atomic, bool):
        raise Invalid("atomic must be true or false.")
    when = body.get(expiry.FIELD)
    if when is not None and action != "add":
        raise Invalid(f"{expiry.FIELD} is only for action add.")
    expiry.parse_expiry(when)
    images, member_ids = _ids(body, "images"), _ids(body, "members")
    if len(images) * len(member_ids) > MAX_PAIRS:
        raise TooLarge(
            f"{len(images)} images x {len(member_ids)} members is more than {MAX_PAIRS} pairs; "
            "split the call."
        )
    return BulkRequest(action, images, member_ids, atomic, when)


def _ids(body: dict[str, Any], name: str) -> list[str]:
    values = body.get(name)
    if not isinstance(values, list) or not values:
        raise Invalid(f"{name} must be a non-empty list of ids.")
    if not all(isinstance(v, str) and 0 < len(v) <= 255 for v in values):
        raise Invalid(f"{name} must be a list of ids (strings of 1 to 255 characters).")
    # Repeating an id would only make its pairs fail as duplicates; once is what was meant.
    return list(dict.fromkeys(values))
