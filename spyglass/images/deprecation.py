"""Deprecation with a successor: an owner announces that an image is replaced, and when it goes.

`POST /v2/images/{id}/actions/deprecate {"replacement", "obsolete_at", "delete_at"}` (owner or
admin) marks an active or deactivated image deprecated: it still works, and shows read-only
properties Glance clients display. From `obsolete_at` on, other projects' downloads get 410 Gone
naming the replacement (the owner project and admins still download it). At `delete_at` the
schedule (spyglass.images.deprecation_schedule) deletes it through the normal deletion path.
Deprecating a deprecated image replaces its terms. `.../actions/undeprecate` ends it all.

Properties written (the `spyglass_` prefix is reserved, so no client forges them):
`spyglass_deprecated` "true", `spyglass_replaced_by`, `spyglass_obsolete_at`, `spyglass_delete_at`,
and the SCS image metadata standard's (scs-0102) `provided_until` (the last full day before
obsolete_at: until then the image is provided) and `uuid_validity` (the last full day before
delete_at: until then its UUID can be referenced). The values they replace are kept and restored
by undeprecate.

Members and consumers are told: an `image.deprecated` event (and its webhooks) reaches the owner
and every member; projects that downloaded a public or community image without being members get
one event each naming them. `GET /v2/shared-images/notices` lists what concerns the caller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from spyglass.audit import events
from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Gone, Invalid, NotFound
from spyglass.images import deprecation_queries as dq
from spyglass.images import queries as q
from spyglass.images import states
from spyglass.images.catalog import is_uuid, load_authorized, target_of
from spyglass.images.policy import Action, authorize, permits
from spyglass.images.queries import ImageRecord
from spyglass.timeutil import isotime, parse_isotime, utcnow

DEPRECATED = "spyglass_deprecated"
REPLACED_BY = "spyglass_replaced_by"
OBSOLETE_AT = "spyglass_obsolete_at"
DELETE_AT = "spyglass_delete_at"
SPYGLASS_PROPERTIES = (DEPRECATED, REPLACED_BY, OBSOLETE_AT, DELETE_AT)
# The SCS image metadata standard's properties a deprecation sets (scs-0102, "Image Updating").
PROVIDED_UNTIL = "provided_until"
UUID_VALIDITY = "uuid_validity"
SCS_PROPERTIES = (PROVIDED_UNTIL, UUID_VALIDITY)
FIELDS = frozenset({"replacement", "obsolete_at", "delete_at"})
DEPRECATABLE = frozenset({states.ACTIVE, states.DEACTIVATED})


def deprecate_image(db: Database, ctx: RequestContext, image_id: str, body: Any) -> ImageRecord:
    terms = _parse(body, image_id)
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.DEPRECATE_IMAGE, lock=True)
        if record.status not in DEPRECATABLE:
            raise Conflict(
                f"Only active or deactivated images can be deprecated; {image_id} is {record.status}."
            )
        if record.protected and terms["delete_at"] is not None:
            raise Conflict(f"Image {image_id} is protected: it cannot be scheduled for deletion.")
        if terms["replacement"] is not None:
            _check_replacement(conn, ctx, terms["replacement"])
        earlier = dq.fetch(conn, image_id)
        previous = earlier["previous_properties"] if earlier else _scs_values(record)
        dq.save(conn, _row(ctx, image_id, terms, previous, earlier), exists_already=earlier is not None)
        q.replace_properties(conn, image_id, record.properties, _marked(record, terms, previous))
        _tell_consumers(conn, ctx, record, events.IMAGE_DEPRECATED, _describe(terms), earlier)
        fresh = q.fetch_image(conn, image_id, ctx.project_id)
    assert fresh is not None
    return fresh


def undeprecate_image(db: Database, ctx: RequestContext, image_id: str) -> ImageRecord:
    with db.write() as conn:
        record = load_authorized(conn, ctx, image_id, Action.UNDEPRECATE_IMAGE, lock=True)
        earlier = dq.fetch(conn, image_id)
        if earlier is None:
            raise Conflict(f"Image {image_id} is not deprecated.")
        dq.remove(conn, image_id)
        q.replace_properties(
            conn, image_id, record.properties, _unmarked(record, earlier["previous_properties"])
        )
        before = _describe({k: earlier[k] for k in FIELDS})
        events.record(conn, ctx, image_id, record.owner, events.IMAGE_UNDEPRECATED, before=before)
        fresh = q.fetch_image(conn, image_id, ctx.project_id)
    assert fresh is not None
    return fresh


def refuse_obsolete_download(ctx: RequestContext, record: ImageRecord, now: datetime | None = None) -> None:
    """Gone, for a project other than the owner, once the image is obsolete (download's check).

    Reads the image's own reserved properties: no query is added to a download."""
    obsolete_at = record.properties.get(OBSOLETE_AT)
    if obsolete_at is None or parse_isotime(obsolete_at) > (now or utcnow()):
        return
    if permits(ctx, Action.DOWNLOAD_OBSOLETE, target_of(record)):
        return
    replacement = record.properties.get(REPLACED_BY)
    advice = f" Use its replacement, image {replacement}." if replacement else ""
    raise Gone(f"Image {record.id} is obsolete since {obsolete_at}: its data is no longer offered.{advice}")


def list_notices(db: Database, ctx: RequestContext) -> list[dict[str, Any]]:
    """Deprecated images the caller's project was offered or downloaded, with their successor."""
    authorize(ctx, Action.GET_DEPRECATION_NOTICES)
    now = utcnow()
    with db.read() as conn:
        return [_notice(row, now) for row in dq.notices(conn, ctx)]


# ---- parsing and validation --------------------------------------------------------------------


def _parse(body: Any, image_id: str) -> dict[str, Any]:
    if body is None:
        body = {}
    if not isinstance(body, dict) or set(body) - FIELDS:
        raise Invalid('The body must be a JSON object with "replacement", "obsolete_at", "delete_at".')
    replacement = body.get("replacement")
    if replacement is not None and not is_uuid(replacement):
        raise Invalid("replacement must be an image id or null.")
    if replacement == image_id:
        raise Invalid("An image cannot replace itself.")
    now = utcnow()
    terms = {
        "replacement": replacement,
        **{k: _time(body.get(k), k, now) for k in ("obsolete_at", "delete_at")},
    }
    if terms["obsolete_at"] and terms["delete_at"] and terms["obsolete_at"] > terms["delete_at"]:
        raise Invalid("obsolete_at must not be later than delete_at.")
    return terms


def _time(raw: Any, name: str, now: datetime) -> datetime | None:
    if raw is None:
        return None
    try:
        value = parse_isotime(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        raise Invalid(f"{name} must be a UTC time such as 2030-01-31T00:00:00Z, or null.")
    if value <= now:
        raise Invalid(f"{name} must be in the future.")
    return value.replace(microsecond=0)


def _check_replacement(conn: Connection, ctx: RequestContext, replacement: str) -> None:
    """The successor must be an active, non-deprecated image the caller can see (400 otherwise,
    with one message whether it is missing or hidden)."""
    try:
        successor = load_authorized(conn, ctx, replacement, Action.GET_IMAGE)
    except NotFound:
        raise Invalid(f"The replacement {replacement} is not an image you can see.") from None
    if successor.status != states.ACTIVE:
        raise Invalid(f"The replacement {replacement} is not active (it is {successor.status}).")
    if dq.fetch(conn, replacement) is not None:
        raise Invalid(f"The replacement {replacement} is itself deprecated.")


# ---- rows, properties, events --------------------------------------------------------------------


def _row(
    ctx: RequestContext,
    image_id: str,
    terms: dict[str, Any],
    previous: dict[str, Any],
    earlier: dict[str, Any] | None,
) -> dict[str, Any]:
    same_obsolete = earlier is not None and earlier["obsolete_at"] == terms["obsolete_at"]
    return {
        "image_id": image_id,
        **terms,
        "deprecated_at": earlier["deprecated_at"] if earlier else utcnow(),
        "deprecated_by_user": ctx.user_id,
        "deprecated_by_project": ctx.project_id,
        # A new obsolete_at is a new warning; the same one is not announced twice.
        "warned_at": earlier["warned_at"] if earlier and same_obsolete else None,
        "deleted_at": None,
        "previous_properties": previous,
    }


def _scs_values(record: ImageRecord) -> dict[str, str | None]:
    return {name: record.properties.get(name) for name in SCS_PROPERTIES}


def _last_full_day(moment: datetime | None) -> str | None:
    return None if moment is None else (moment - timedelta(days=1)).date().isoformat()


def _marked(record: ImageRecord, terms: dict[str, Any], previous: dict[str, Any]) -> dict[str, str]:
    props = _unmarked(record, previous)
    written = {
        DEPRECATED: "true",
        REPLACED_BY: terms["replacement"],
        OBSOLETE_AT: isotime(terms["obsolete_at"]),
        DELETE_AT: isotime(terms["delete_at"]),
        PROVIDED_UNTIL: _last_full_day(terms["obsolete_at"]),
        UUID_VALIDITY: _last_full_day(terms["delete_at"]),
    }
    props.update({k: v for k, v in written.items() if v is not None})
    return props


def _unmarked(record: ImageRecord, previous: dict[str, Any]) -> dict[str, str]:
    """The image's properties without the deprecation's, with the SCS values it replaced."""
    props = {k: v for k, v in record.properties.items() if k not in SPYGLASS_PROPERTIES + SCS_PROPERTIES}
    props.update({k: v for k, v in previous.items() if v is not None})
    return props


def _describe(terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "replacement": terms["replacement"],
        "obsolete_at": isotime(terms["obsolete_at"]),
        "delete_at": isotime(terms["delete_at"]),
    }


def tell_consumers(
    conn: Connection, ctx: RequestContext | None, record: ImageRecord, kind: str, after: dict[str, Any]
) -> None:
    """One image-wide event (owner and members, and their webhooks) and, for an image every project
    can see, one event naming each other project that downloaded it."""
    events.record(conn, ctx, record.id, record.owner, kind, after=after)
    if record.visibility not in ("public", "community"):
        return
    for project in dq.consumers_beyond_members(conn, record.id, record.owner):
        events.record(conn, ctx, record.id, record.owner, kind, member_id=project, after=after)


def _tell_consumers(
    conn: Connection,
    ctx: RequestContext,
    record: ImageRecord,
    kind: str,
    after: dict[str, Any],
    earlier: dict[str, Any] | None,
) -> None:
    before = _describe({k: earlier[k] for k in FIELDS}) if earlier else None
    if before == after:
        return  # the same terms again: nothing new to tell
    tell_consumers(conn, ctx, record, kind, after)


def _notice(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    obsolete = row["obsolete_at"] is not None and row["obsolete_at"] <= now
    return {
        "image_id": row["id"],
        "image_name": row["name"],
        "owner": row["owner"],
        "state": "obsolete" if obsolete else "deprecated",
        "replacement": row["replacement"],
        "deprecated_at": isotime(row["deprecated_at"]),
        "obsolete_at": isotime(row["obsolete_at"]),
        "delete_at": isotime(row["delete_at"]),
        "reason": "member" if row["offered"] else "consumer",
    }
