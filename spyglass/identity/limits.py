"""Keystone's unified limits: registered limits (a service's default for a resource), limits (a
project's or a domain's own value), and the enforcement model, with Keystone's bodies and errors.

Writes are for admins; anyone reads registered limits and the model, and a project reads its own
limits. Limits live in the database and nowhere else, so a change takes effect on the next request
of every API node. The image side reads a project's limits with `effective`.

The model is Keystone's `flat`: a domain limit is the domain's own and does not bound its projects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from sqlalchemy import Connection, Select
from sqlalchemy.sql.elements import ColumnElement

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Forbidden, Invalid, NotFound
from spyglass.identity import limit_queries as lq
from spyglass.identity.inputs import Row, check_characters
from spyglass.identity.policy import Action, Target, authorize
from spyglass.identity.services import service_ids

MODEL = {
    "name": "flat",
    "description": ("Limit enforcement and validation does not take project hierarchy into consideration."),
}
# Keystone's bounds: the value of a signed 32-bit column; -1 means unlimited.
_LIMIT_VALUE = {"type": "integer", "minimum": -1, "maximum": 0x7FFFFFFF}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_NULLABLE_ID = {"type": ["string", "null"], "maxLength": 64}
_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": 255}
_REGISTERED = {
    "service_id": _ID,
    "region_id": _NULLABLE_ID,
    "resource_name": _NAME,
    "default_limit": _LIMIT_VALUE,
    "description": _DESCRIPTION,
}
_LIMIT = {
    "project_id": _NULLABLE_ID,
    "domain_id": _NULLABLE_ID,
    "service_id": _ID,
    "region_id": _NULLABLE_ID,
    "resource_name": _NAME,
    "resource_limit": _LIMIT_VALUE,
    "description": _DESCRIPTION,
}


def _list_of(key: str, item: Mapping[str, Any], *required: str) -> Draft202012Validator:
    entry = {"type": "object", "properties": item, "required": list(required), "additionalProperties": False}
    return Draft202012Validator(
        {
            "type": "object",
            "properties": {key: {"type": "array", "items": entry, "minItems": 1}},
            "required": [key],
            "additionalProperties": False,
        }
    )


def _one_of(key: str, item: Mapping[str, Any]) -> Draft202012Validator:
    entry = {"type": "object", "properties": item, "additionalProperties": False}
    return Draft202012Validator(
        {"type": "object", "properties": {key: entry}, "required": [key], "additionalProperties": False}
    )


_CREATE_REGISTERED = _list_of(
    "registered_limits", _REGISTERED, "service_id", "resource_name", "default_limit"
)
_UPDATE_REGISTERED = _one_of("registered_limit", _REGISTERED)
_CREATE_LIMITS = _list_of("limits", _LIMIT, "service_id", "resource_name", "resource_limit")
_UPDATE_LIMIT = _one_of("limit", {"resource_limit": _LIMIT_VALUE, "description": _DESCRIPTION})


def _validated(validator: Draft202012Validator, body: Any) -> Any:
    """The body, or Keystone's 400: `Invalid input for field '<path>': <reason>`."""
    error = best_match(validator.iter_errors(body))
    if error is not None:
        path = "/".join(str(p) for p in error.path) or "<root>"
        raise Invalid(f"Invalid input for field '{path}': {error.message}")
    return body


def _must_exist(conn: Connection, entry: Row, target: str, region: str) -> None:
    """Keystone's check that the service, region and project named exist."""
    if "service_id" in entry and entry["service_id"] not in service_ids():
        raise Invalid(_missing("service_id", target))
    if entry.get("region_id") is not None and entry["region_id"] != region:
        raise Invalid(_missing("region_id", target))
    if entry.get("project_id") is not None and not lq.owner_exists(conn, entry["project_id"], None):
        raise Invalid(_missing("project_id", target))
    if entry.get("domain_id") is not None and not lq.owner_exists(conn, None, entry["domain_id"]):
        raise Invalid(_missing("domain_id", target))


def _missing(attribute: str, target: str) -> str:
    return (
        f"Expecting to find {attribute} in {target}. The server could not comply with the request "
        "since it is either malformed or otherwise incorrect. The client is assumed to be in error."
    )


def _duplicate(kind: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry.")


def _new_id() -> str:
    return uuid.uuid4().hex


# ---- registered limits -------------------------------------------------------------------------


def list_registered_limits(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    authorize(ctx, Action.LIST_REGISTERED_LIMITS)
    with db.read() as conn:
        return lq.registered_list(conn, params)


def get_registered_limit(db: Database, ctx: RequestContext, registered_id: str) -> Row:
    authorize(ctx, Action.GET_REGISTERED_LIMIT)
    with db.read() as conn:
        return _registered(conn, registered_id)


def _registered(conn: Connection, registered_id: str) -> Row:
    found = lq.registered(conn, registered_id)
    if found is None:
        raise NotFound(f"Could not find registered limit for {registered_id}.")
    return found


def create_registered_limits(db: Database, ctx: RequestContext, region: str, body: Any) -> list[Row]:
    authorize(ctx, Action.CREATE_REGISTERED_LIMITS)
    entries = _validated(_CREATE_REGISTERED, body)["registered_limits"]
    created = []
    with db.write() as conn:
        for entry in entries:
            check_characters(entry)
            _must_exist(conn, entry, "registered_limits", region)
            row = {"id": _new_id(), "region_id": None, "description": None, **entry}
            if lq.registered_matching(conn, row["service_id"], row["region_id"], row["resource_name"]):
                raise _duplicate("registered_limit")
            lq.insert_registered(conn, row)
            created.append(row)
    return created


def update_registered_limit(
    db: Database, ctx: RequestContext, region: str, registered_id: str, body: Any
) -> Row:
    authorize(ctx, Action.UPDATE_REGISTERED_LIMIT)
    changes = _validated(_UPDATE_REGISTERED, body)["registered_limit"]
    check_characters(changes)
    with db.write() as conn:
        row = _registered(conn, registered_id)
        _must_exist(conn, changes, "registered_limit", region)
        identity = ("service_id", "region_id", "resource_name")
        moved = {**row, **changes}
        if any(moved[k] != row[k] for k in identity):
            # Its limits were set for what it names now.
            if lq.is_referenced(conn, registered_id):
                raise Forbidden(
                    f"Unable to update or delete registered limit {registered_id} because there are "
                    "project limits associated with it."
                )
            taken = lq.registered_matching(
                conn,
                moved["service_id"],
                moved["region_id"],
                moved["resource_name"],
                other_than=registered_id,
            )
            if taken:
                raise _duplicate("registered_limit")
        lq.update_registered(conn, registered_id, changes)
        return moved


def delete_registered_limit(db: Database, ctx: RequestContext, registered_id: str) -> None:
    authorize(ctx, Action.DELETE_REGISTERED_LIMIT)
    with db.write() as conn:
        _registered(conn, registered_id)
        if lq.is_referenced(conn, registered_id):
            raise Forbidden(
                f"Unable to update or delete registered limit {registered_id} because there are "
                "project limits associated with it."
            )
        lq.delete_registered(conn, registered_id)


# ---- limits ------------------------------------------------------------------------------------


def list_limits(db: Database, ctx: RequestContext, params: Mapping[str, str]) -> list[Row]:
    """Admins see every limit; anyone else only those of the project of the token."""
    authorize(ctx, Action.LIST_LIMITS)
    if not ctx.is_admin:
        if not ctx.project_id or params.get("project_id", ctx.project_id) != ctx.project_id:
            return []
        params = {**params, "project_id": ctx.project_id}
    with db.read() as conn:
        return lq.limit_list(conn, params)


def get_limit(db: Database, ctx: RequestContext, limit_id: str) -> Row:
    with db.read() as conn:
        found = lq.limit(conn, limit_id)
    # The limit's project is the target: checked before anything about it is shown.
    authorize(ctx, Action.GET_LIMIT, Target(project_id=found["project_id"] if found else None))
    if found is None:
        raise NotFound(f"Could not find limit for {limit_id}.")
    return found


def get_limit_model(ctx: RequestContext) -> Row:
    authorize(ctx, Action.GET_LIMIT_MODEL)
    return dict(MODEL)


def create_limits(db: Database, ctx: RequestContext, region: str, body: Any) -> list[Row]:
    authorize(ctx, Action.CREATE_LIMITS)
    entries = _validated(_CREATE_LIMITS, body)["limits"]
    created = []
    with db.write() as conn:
        for entry in entries:
            check_characters(entry)
            created.append(_create_limit(conn, entry, region))
    return created


def _create_limit(conn: Connection, entry: Row, region: str) -> Row:
    project_id, domain_id = entry.get("project_id"), entry.get("domain_id")
    if (project_id is None) == (domain_id is None):
        raise Invalid(
            "Invalid input for field 'limits': exactly one of project_id and domain_id is required."
        )
    _must_exist(conn, entry, "limits", region)
    registered = lq.registered_matching(
        conn, entry["service_id"], entry.get("region_id"), entry["resource_name"]
    )
    if registered is None:
        raise Forbidden("Unable to create a limit that has no corresponding registered limit.")
    if lq.limit_exists(conn, registered["id"], project_id, domain_id):
        raise _duplicate("limit")
    row = {
        "id": _new_id(),
        "registered_limit_id": registered["id"],
        "project_id": project_id,
        "domain_id": domain_id,
        "resource_limit": entry["resource_limit"],
        "description": entry.get("description"),
    }
    lq.insert_limit(conn, row)
    found = lq.limit(conn, row["id"])
    assert found is not None
    return found


def update_limit(db: Database, ctx: RequestContext, limit_id: str, body: Any) -> Row:
    authorize(ctx, Action.UPDATE_LIMIT)
    changes = _validated(_UPDATE_LIMIT, body)["limit"]
    check_characters(changes)
    with db.write() as conn:
        if lq.limit(conn, limit_id) is None:
            raise NotFound(f"Could not find limit for {limit_id}.")
        if changes:
            lq.update_limit(conn, limit_id, changes)
        found = lq.limit(conn, limit_id)
    assert found is not None
    return found


def delete_limit(db: Database, ctx: RequestContext, limit_id: str) -> None:
    authorize(ctx, Action.DELETE_LIMIT)
    with db.write() as conn:
        if lq.limit(conn, limit_id) is None:
            raise NotFound(f"Could not find limit for {limit_id}.")
        lq.delete_limit(conn, limit_id)


# ---- what the image side reads -----------------------------------------------------------------


def effective(
    conn: Connection,
    service_id: str,
    region: str,
    project_id: str,
    resources: Sequence[str],
    statement: Select[Any] | None = None,
) -> dict[str, int]:
    """The project's limit of each of `resources` the service registered; a resource not
    registered is unlimited (absent here), and so is a limit of -1. `statement`: one built by
    limit_queries.effective_statement with columns of the caller's."""
    chosen = lq.EFFECTIVE if statement is None else statement
    found = lq.effective(conn, service_id, region, project_id, resources, chosen)
    return {k: v for k, v in found.items() if v >= 0}


def effective_limit_column(resource: str, *, service: str, region: str, project: str) -> ColumnElement[Any]:
    """The project's limit of one resource as a column of a caller's statement (NULL: none
    registered; -1: unlimited); the arguments name its bind parameters."""
    return lq.effective_limit_column(resource, service=service, region=region, project=project)


def effective_with(extra: Callable[[ColumnElement[str]], ColumnElement[Any]]) -> Select[Any]:
    """The statement of `effective` with a column of the caller's, `extra(resource name)`,
    evaluated once per registered limit of the service and region (build it once)."""
    return lq.effective_statement(extra)


def forget_project(conn: Connection, project_id: str) -> None:
    """A deleted project's limits go with it, as in Keystone."""
    lq.delete_project_limits(conn, project_id)


def forget_domain(conn: Connection, domain_id: str) -> None:
    lq.delete_domain_limits(conn, domain_id)
