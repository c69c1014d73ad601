"""Impact before harm: refuse to cut off consumer projects that recently used an image, unless told to.

Removing a member, deleting, deactivating, or making private an image that other projects
downloaded within `impact_window_days` is refused (409, naming those projects) when the owner
opted in: the image property `spyglass_protect_consumers=true`, or the deployment default
`protect_consumers` when the image does not say (`false` on the image opts out of that default).
The caller proceeds anyway with the header `X-Spyglass-Override-Impact: true`.

`Safeguards` carries these settings, the recycle bin's retention and the caller's override into
the service functions; its defaults are Glance's behaviour (no protection, no recycle bin).
The functions at the end are what the safeguards add to Glance's operations (the impact check and
the audit event), called by spyglass.images and spyglass.members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.errors import Conflict
from spyglass.images import queries as q
from spyglass.images.queries import ImageRecord
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

PROTECT_PROPERTY = "spyglass_protect_consumers"
OVERRIDE_HEADER = "X-Spyglass-Override-Impact"
_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Safeguards:
    protect_consumers: bool = False
    impact_window_days: int = 30
    recycle_retention_days: int = 0
    override: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, override: bool = False) -> Safeguards:
        return cls(
            protect_consumers=settings.protect_consumers,
            impact_window_days=settings.impact_window_days,
            recycle_retention_days=settings.recycle_retention_days,
            override=override,
        )


GLANCE = Safeguards()


class ImpactConflict(Conflict):
    """The change would cut off consumer projects that recently used the image."""

    def __init__(self, message: str, detail: str, projects: list[str]) -> None:
        super().__init__(message, detail)
        self.projects = projects


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def protects(record: ImageRecord, guard: Safeguards) -> bool:
    """Did the owner opt in to impact protection for this image?"""
    value = record.properties.get(PROTECT_PROPERTY)
    return guard.protect_consumers if value is None else is_true(value)


def check_impact(
    conn: Connection, record: ImageRecord, guard: Safeguards, harm: str, *, only: str | None = None
) -> None:
    """Raise ImpactConflict when the change (`harm`, e.g. "delete") would affect recent consumers.

    `only` limits the question to one project (removing that member).
    """
    if guard.override or not protects(record, guard):
        return
    since = utcnow() - timedelta(days=guard.impact_window_days)
    affected = q.recent_consumers(conn, record.id, since, exclude=record.owner, only=only)
    if affected:
        # One paragraph, no separate detail: clients that join an error's lines (openstacksdk
        # with ": ") or show only its first (python-glanceclient) then all read the whole of it.
        raise ImpactConflict(
            f"Refusing to {harm} image {record.id}: consumer projects downloaded it in the last "
            f"{guard.impact_window_days} days ({', '.join(affected)}), and the owner asked to protect "
            f"its consumers ({PROTECT_PROPERTY}). To proceed anyway, send the header "
            f"{OVERRIDE_HEADER}: true (with the Spyglass openstack client plugin: --override-impact).",
            "",
            affected,
        )


# ---- what the safeguards add to the Glance operations ------------------------------------------
# Each is called by the service function of spyglass.images or spyglass.members, in its transaction,
# once the operation is authorized and about to be made.


def visibility_changing(
    conn: Connection, ctx: RequestContext, record: ImageRecord, visibility: str, guard: Safeguards
) -> None:
    if visibility == "private":
        check_impact(conn, record, guard, "make private")
    events.record(
        conn,
        ctx,
        record.id,
        record.owner,
        events.VISIBILITY_CHANGED,
        before={"visibility": record.visibility},
        after={"visibility": visibility},
    )


def deactivating(conn: Connection, ctx: RequestContext, record: ImageRecord, guard: Safeguards) -> None:
    check_impact(conn, record, guard, "deactivate")
    _status_event(conn, ctx, record, events.IMAGE_DEACTIVATED, "deactivated")


def reactivating(conn: Connection, ctx: RequestContext, record: ImageRecord) -> None:
    _status_event(conn, ctx, record, events.IMAGE_REACTIVATED, "active")


def _status_event(conn: Connection, ctx: RequestContext, record: ImageRecord, kind: str, status: str) -> None:
    before, after = {"status": record.status}, {"status": status}
    events.record(conn, ctx, record.id, record.owner, kind, before=before, after=after)


def member_added(
    conn: Connection, ctx: RequestContext, record: ImageRecord, member_id: str, status: str = "pending"
) -> None:
    after = added_state(status)
    events.record(conn, ctx, record.id, record.owner, events.MEMBER_ADDED, member_id=member_id, after=after)


def added_state(status: str) -> dict[str, str]:
    """The `after` of a member.added event."""
    # A share starts accepted only when the member trusts the owner (spyglass.sharing.trust).
    return {"status": status} if status == "pending" else {"status": status, "reason": events.TRUSTED_OWNER}


def member_status_changing(
    conn: Connection, ctx: RequestContext, record: ImageRecord, row: Any, status: str
) -> None:
    if row["status"] == status:
        return
    events.record(
        conn,
        ctx,
        record.id,
        record.owner,
        events.MEMBER_STATUS_CHANGED,
        member_id=row["member_id"],
        before={"status": row["status"]},
        after={"status": status},
    )


def member_removing(
    conn: Connection, ctx: RequestContext, record: ImageRecord, row: Any, guard: Safeguards
) -> None:
    member_id = row["member_id"]
    check_impact(conn, record, guard, f"remove member {member_id} from", only=member_id)
    before = {"status": row["status"]}
    events.record(
        conn,
        ctx,
        record.id,
        record.owner,
        events.MEMBER_REMOVED,
        member_id=member_id,
        before=before,
        member_times=(row["created_at"], row["updated_at"]),
    )
