"""Image quotas: Glance's four resources, limited by Keystone's unified limits of the image service.

- `image_size_total`: MiB of image data a project owns (each location counted, as Glance counts
  it), plus what its running uploads and imports reserved;
- `image_stage_total`: MiB staged and not yet imported, plus what running stages reserved;
- `image_count_total`: images the project owns, in any status but deleted (and killed);
- `image_count_uploading`: uploads, stages and imports in flight.

A resource with no registered limit is unlimited, and so is a limit of -1. `Quotas.enabled` (the
`quota_enforcement` setting) turns enforcement off. The owner of the image pays: a copy into my
project counts its full logical size for me, however many images share its blob.

Unlike Glance, which checks the usage before an operation and so lets a project end one upload past
its limit, a check here includes what the operation adds, and the check and the accounting are one
step: `claim`, `confirm` and `reserve` hold the project's locks (spyglass.images.quota_queries) in
the caller's write transaction, and data in flight is covered by a reservation row. A create's
check reads one row whatever the project's size: the count kept by triggers, whose row the new
image holds to the commit. An upload of
unknown length reserves as it goes (`extend`), so parallel uploads never promise the same headroom
twice; one that would cross the limit mid-stream is refused and leaves nothing behind. Recovery
drops every reservation at start.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, QuotaExceeded
from spyglass.identity import keystone_limits, limits
from spyglass.identity.services import IMAGE
from spyglass.images import quota_queries as qq
from spyglass.images.policy import Action, authorize
from spyglass.images.quota_queries import (
    IMAGE_COUNT_TOTAL,
    IMAGE_COUNT_UPLOADING,
    IMAGE_SIZE_TOTAL,
    IMAGE_STAGE_TOTAL,
    RESOURCES,
)
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

__all__ = [
    "ENFORCED",
    "IMAGE_COUNT_TOTAL",
    "IMAGE_COUNT_UPLOADING",
    "IMAGE_SIZE_TOTAL",
    "IMAGE_STAGE_TOTAL",
    "OFF",
    "LimitSource",
    "Quotas",
]

MIB = 1024 * 1024
SIZES = frozenset({IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL})
# How far ahead an upload of unknown length reserves: one database write per this many bytes.
RESERVE_STEP = 64 * MIB


class LimitSource(Protocol):
    """Limits kept outside the database (an external Keystone): a project's limit of each limited
    resource, in the resource's unit; raises Unavailable when they cannot be read."""

    def limits(self, project_id: str) -> dict[str, int]: ...


@dataclass(frozen=True)
class Quotas:
    """How quotas apply to a deployment: on or off, the region whose limits count, and where the
    limits are kept (None: the embedded identity's tables, read in the caller's transaction)."""

    enabled: bool = True
    region: str = "RegionOne"
    source: LimitSource | None = field(default=None, compare=False)

    @classmethod
    def of(cls, settings: Settings) -> Quotas:
        source = None
        if settings.identity == "keystone" and settings.quota_enforcement:
            options = settings.keystone_authtoken
            source = keystone_limits.for_keystone(options, settings.region, settings.limits_cache_time)
        return cls(enabled=settings.quota_enforcement, region=settings.region, source=source)

    def read_ahead(self, project_id: str | None) -> None:
        """Read an external Keystone's limits of the project into its cache before a write
        transaction opens, so that no transaction (SQLite has one writer) waits for Keystone."""
        if self.enabled and self.source is not None and project_id:
            self.source.limits(project_id)


OFF = Quotas(enabled=False)
# What a service function applies when its caller says nothing: enforced, in the default region.
ENFORCED = Quotas()


def _unit(resource: str) -> int:
    return MIB if resource in SIZES else 1


def _shown(resource: str, amount: int, *, up: bool = False) -> int:
    """An amount in the resource's unit: MiB for sizes (a delta rounds up, a usage down)."""
    unit = _unit(resource)
    return -(-amount // unit) if up else amount // unit


def limits_of(conn: Connection, quotas: Quotas, project_id: str) -> dict[str, int]:
    """The project's limit of each limited resource, in the resource's unit; {} when off."""
    if not quotas.enabled:
        return {}
    if quotas.source is not None:
        return {r: v for r, v in quotas.source.limits(project_id).items() if r in RESOURCES}
    return limits.effective(conn, IMAGE.id, quotas.region, project_id, RESOURCES)


@functools.cache
def _locking_statement() -> Select[Any]:
    return limits.effective_with(qq.lock_column)


def _limits_locked(
    conn: Connection, quotas: Quotas, project_id: str, wanted: Iterable[str]
) -> dict[str, int]:
    """The project's limits of the `wanted` resources, the project's quota lock held (to the end of
    the transaction) when one of them but the count is limited. With the embedded identity on
    PostgreSQL, the limits and the lock are one round trip; a resource with no limit takes no lock."""
    if not quotas.enabled:
        return {}
    names = tuple(wanted)
    if quotas.source is not None:
        found = {r: v for r, v in quotas.source.limits(project_id).items() if r in names}
        if any(r != IMAGE_COUNT_TOTAL for r in found):
            qq.lock_project(conn, project_id)
        return found
    # A row of a registered limit of the resources takes the lock, even one of -1 (unlimited).
    statement = _locking_statement() if qq.needs_lock(conn) else None
    return limits.effective(conn, IMAGE.id, quotas.region, project_id, names, statement)


def claim(conn: Connection, quotas: Quotas, project_id: str | None, deltas: Mapping[str, int]) -> None:
    """Refuse (QuotaExceeded) unless the project may add `deltas` (bytes for sizes) to its usage.

    Takes the project's quota lock, held to the end of the caller's write transaction: what the
    caller then writes (an image row, a status, a reservation) is counted by the next check."""
    _check(conn, quotas, project_id, deltas, written=False)


def confirm(conn: Connection, quotas: Quotas, project_id: str | None, added: Mapping[str, int]) -> None:
    """`claim` for what the caller's transaction has written already (an image row): refuse unless
    the usage, which now includes it, is within the limits. The new image holds its owner's count
    row to the commit (the count trigger), so a check of the count alone takes no other lock."""
    _check(conn, quotas, project_id, added, written=True)


@dataclass(frozen=True)
class CountCheck:
    """A create's `image_count_total` check, carried by a statement the create sends anyway (its
    image read back after the insert): the owner's limit and count, as two more columns. Exact for
    the reason `confirm` is: the new image holds the count row."""

    columns: tuple[ColumnElement[Any], ColumnElement[Any]]
    params: dict[str, str]
    project_id: str

    def apply(self, limit: int | None, used: int) -> None:
        """Refuse (QuotaExceeded) unless the count, which includes the new image, is within the limit."""
        if limit is not None and limit >= 0 and used > limit:
            raise _exceeded(self.project_id, [(IMAGE_COUNT_TOTAL, limit, used - 1, 1)])


def count_check(quotas: Quotas, project_id: str | None) -> CountCheck | None:
    """The check of a create of one image for `project_id` as columns, or None where it cannot ride
    along: quotas off or no owner (no check), or limits kept in an external Keystone (`confirm`)."""
    if project_id is None or not quotas.enabled or quotas.source is not None:
        return None
    params = {"quota_project": project_id, "quota_service": IMAGE.id, "quota_region": quotas.region}
    return CountCheck(_count_columns(), params, project_id)


@functools.cache
def _count_columns() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    limit = limits.effective_limit_column(
        IMAGE_COUNT_TOTAL, service="quota_service", region="quota_region", project="quota_project"
    )
    return limit.label("quota_limit"), qq.count_column("quota_project").label("quota_used")


def _check(
    conn: Connection, quotas: Quotas, project_id: str | None, deltas: Mapping[str, int], *, written: bool
) -> None:
    if project_id is None or not quotas.enabled:
        return
    if IMAGE_COUNT_TOTAL in deltas and not written:
        # The image is not written yet: hold its owner's count row first, as its write will.
        qq.hold_count(conn, project_id)
    limited = _limits_locked(conn, quotas, project_id, deltas)
    _compare(conn, project_id, limited, deltas, written=written)


def _compare(
    conn: Connection, project_id: str, limited: Mapping[str, int], deltas: Mapping[str, int], *, written: bool
) -> None:
    """Refuse unless usage plus `deltas` is within `limited`; the project's lock is held."""
    wanted = {r: d for r, d in deltas.items() if r in limited}
    if not wanted:
        return
    # Read after the lock is held: every transfer or create that checked before has committed.
    used = qq.usage(conn, project_id, wanted)
    if written:
        used = {r: used[r] - d for r, d in wanted.items()}
    # A delta of 0 (a size not known yet) is refused only when the project is over already.
    over = [r for r, d in wanted.items() if used[r] + d > limited[r] * _unit(r)]
    if over:
        raise _exceeded(project_id, [(r, limited[r], used[r], wanted[r]) for r in over])


def change_owner(conn: Connection, quotas: Quotas, image_id: str, new_owner: str | None) -> None:
    """The image now belongs to `new_owner`, in the caller's transaction, just written: it counts
    against the new owner's limits (refused past them, as a create is), and so do its transfers
    in flight. The previous owner's usage drops by the same amount, with no check needed. (With an
    external Keystone, the new owner's limits may be read in the transaction: an admin's rare call.)"""
    qq.move_reservations(conn, image_id, new_owner or "")
    if new_owner is None:
        return
    limited = _limits_locked(conn, quotas, new_owner, RESOURCES)
    if limited:
        _compare(conn, new_owner, limited, qq.image_usage(conn, image_id, limited), written=True)


def _exceeded(project_id: str, over: list[tuple[str, int, int, int]]) -> QuotaExceeded:
    """oslo.limit's text, which Glance answers with its 413."""
    parts = [
        f"Resource {r} is over limit of {limit} due to current usage {_shown(r, used)} "
        f"and delta {_shown(r, delta, up=True)}"
        for r, limit, used, delta in over
    ]
    return QuotaExceeded(f"Project {project_id} is over a limit for [{', '.join(parts)}]")


def reserve(
    conn: Connection, quotas: Quotas, project_id: str | None, image_id: str, resource: str, amount: int
) -> bool:
    """Hold `amount` bytes of `resource` for the image's transfer, checked as one step; False (and
    nothing held) when the resource is not limited."""
    if project_id is None:
        return False
    limited = _limits_locked(conn, quotas, project_id, [resource])
    if resource not in limited:
        return False
    held = qq.reserved(conn, image_id, resource)
    _compare(conn, project_id, limited, {resource: amount - held}, written=False)
    qq.set_reservation(conn, image_id, resource, project_id, amount, utcnow())
    return True


def extend(
    db: Database, quotas: Quotas, project_id: str | None, image_id: str, resource: str, needed: int
) -> int:
    """Grow the transfer's reservation to at least `needed` bytes (refused past the limit) and, room
    permitting, a step further; the bytes now held (`needed` and more when not limited).
    `project_id`: the owner when the transfer began; the image's owner now is the one checked (an
    admin may have given the image away meanwhile, and its reservation with it)."""
    quotas.read_ahead(project_id)
    with db.write() as conn:
        there, project_id = qq.image_owner(conn, image_id)
        if not there:
            # Deleted while its data was coming: the upload ends here (and its reservation went).
            raise Conflict(f"Image {image_id} was deleted or changed during the upload.")
        limited = {} if project_id is None else _limits_locked(conn, quotas, project_id, [resource])
        if project_id is None or resource not in limited:
            return needed + RESERVE_STEP
        limit = limited[resource] * MIB
        used = qq.usage(conn, project_id, [resource])[resource]
        held = qq.reserved(conn, image_id, resource)
        if used - held + needed > limit:
            raise _exceeded(project_id, [(resource, limit // MIB, used, needed - held)])
        # A step ahead while there is room for it; near the limit only what has come, so that
        # concurrent transfers are not refused for room another holds but may never use.
        ahead = needed + RESERVE_STEP
        granted = ahead if used - held + ahead <= limit else needed
        try:
            qq.set_reservation(conn, image_id, resource, project_id, granted, utcnow())
        except IntegrityError as exc:
            # The image was deleted while its data was coming (its reservation went with it).
            raise Conflict(f"Image {image_id} was deleted or changed during the upload.") from exc
        return granted


def settle(conn: Connection, quotas: Quotas, image_id: str, resource: str, size: int) -> None:
    """The transfer is done and `size` bytes are about to be recorded on the image, in this
    transaction: its reservation goes, and the size is checked once more against the limits of the
    image's owner now (the limit may have been lowered, the size was not known before, or the
    image was given to another project meanwhile)."""
    qq.release(conn, image_id, resource)
    there, owner = qq.image_owner(conn, image_id)
    if there:  # else recording the size fails: the image is gone
        claim(conn, quotas, owner, {resource: size})


def release(conn: Connection, image_id: str) -> None:
    """The transfer failed: what it held is free again."""
    qq.release(conn, image_id)


def release_all(conn: Connection) -> int:
    return qq.release_all(conn)


# ---- GET /v2/info/usage --------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    limit: int
    usage: int


def usage_of(db: Database, ctx: RequestContext, quotas: Quotas) -> dict[str, Usage]:
    """The caller's project's limit (-1: unlimited) and usage of each resource, in their units;
    {} when quotas are off, as Glance answers when it does not use Keystone's limits."""
    authorize(ctx, Action.GET_QUOTA_USAGE)
    if not quotas.enabled or not ctx.project_id:
        return {}
    with db.read() as conn:
        limited = limits_of(conn, quotas, ctx.project_id)
        used = qq.usage(conn, ctx.project_id, RESOURCES)
    return {r: Usage(limited.get(r, -1), _shown(r, used[r])) for r in RESOURCES}
