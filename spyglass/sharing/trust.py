"""Trusted owners: a consumer project lets the shares of owners it trusts start `accepted`.

The accept step of Glance's sharing protects a project from images it did not ask for, but it
breaks automation: an image built in a CI project must be accepted by hand in every consumer.
A consumer project declares whom it trusts (`/v2/shared-images/auto-accept`): one owner project,
or every project of one domain. A new share from a trusted owner then starts `accepted` instead of
`pending`. Rules never widen what an owner can do: the owner still needs the right to share, and
an untrusted owner's share stays `pending`. `initial_status` is the one place that decides the
status of a new member row.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.errors import Conflict, Invalid, NotFound, TooLarge
from spyglass.images.policy import Action, authorize
from spyglass.sharing import trust_queries as q
from spyglass.timeutil import isotime, utcnow

RULES_PER_PROJECT = 100
ID_MAX = 64
BODY_MESSAGE = 'The body must be a JSON object {"owner": <project id>} or {"owner_domain": <domain id>}.'


def initial_status(conn: Connection, owner_project_id: str | None, member_project_id: str) -> str:
    """The status a new member row starts with: `accepted` when the member trusts the owner."""
    trusted = (
        owner_project_id is not None
        and owner_project_id != member_project_id
        and q.trusts(conn, member_project_id, owner_project_id)
    )
    return status_for(owner_project_id, member_project_id, trusted=trusted)


def status_for(owner_project_id: str | None, member_project_id: str, *, trusted: bool) -> str:
    """`initial_status`, once whether the member trusts the owner (q.trusted) is known."""
    if owner_project_id is None or owner_project_id == member_project_id:
        return "pending"
    return "accepted" if trusted else "pending"


def _project(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise Invalid("Trusted owners belong to a project: use a project-scoped token.")
    return ctx.project_id


def _parse(body: Any) -> tuple[str, str]:
    """(column, id): the one key of the body, owner or owner_domain, and its id."""
    if not isinstance(body, dict) or len(body) != 1 or set(body) - {"owner", "owner_domain"}:
        raise Invalid(BODY_MESSAGE)
    ((column, value),) = body.items()
    if not isinstance(value, str) or not value or len(value) > ID_MAX:
        raise Invalid(f"{column} must be an id (a string of 1 to {ID_MAX} characters).")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise Invalid(f"{column} must be an id; control characters are not allowed.")
    return column, value


def _check_exists(conn: Connection, column: str, value: str, project: str) -> None:
    if column == "owner":
        if value == project:
            raise Invalid(f"Project {value} is the caller's project; its own images need no trust.")
        if not q.project_exists(conn, value):
            raise Invalid(f"Project {value} does not exist; only an existing project can be trusted.")
    elif not q.domain_exists(conn, value):
        raise Invalid(f"Domain {value} does not exist; only an existing domain can be trusted.")


def add_rule(db: Database, ctx: RequestContext, body: Any) -> dict[str, Any]:
    authorize(ctx, Action.MANAGE_TRUSTED_OWNERS)
    project = _project(ctx)
    column, value = _parse(body)
    with db.write() as conn:
        q.lock_project(conn, project)
        _check_exists(conn, column, value, project)
        if q.find_rule(conn, project, column, value) is not None:
            raise Conflict(f"Project {project} already trusts {column} {value}.")
        if q.count_rules(conn, project) >= RULES_PER_PROJECT:
            raise TooLarge(f"A project may trust at most {RULES_PER_PROJECT} owners and domains.")
        row = {
            "id": str(uuid.uuid4()),
            "project_id": project,
            "owner": value if column == "owner" else None,
            "owner_domain": value if column == "owner_domain" else None,
            "created_by": ctx.user_id,
            "created_at": utcnow(),
        }
        q.insert_rule(conn, row)
    return document(row)


def list_rules(db: Database, ctx: RequestContext) -> list[dict[str, Any]]:
    authorize(ctx, Action.GET_TRUSTED_OWNERS)
    project = _project(ctx)
    with db.read() as conn:
        return [document(r) for r in q.list_rules(conn, project)]


def delete_rule(db: Database, ctx: RequestContext, rule_id: str) -> None:
    """Delete one of the caller's project's rules; another project's rule is 404, as a missing one."""
    authorize(ctx, Action.MANAGE_TRUSTED_OWNERS)
    project = _project(ctx)
    missing = NotFound(f"No trusted owner rule found with ID {rule_id}")
    try:
        uuid.UUID(rule_id)
    except ValueError:
        raise missing from None
    with db.write() as conn:
        if not q.delete_rule(conn, project, rule_id):
            raise missing


def document(row: Any) -> dict[str, Any]:
    """A rule on the wire: its id, what it trusts (owner or owner_domain) and when it was made."""
    key = "owner" if row["owner"] is not None else "owner_domain"
    return {"id": row["id"], key: row[key], "created_at": isotime(row["created_at"])}


# ---- project lifecycle -------------------------------------------------------------------------


def on_project_deleted(conn: Connection, project_id: str) -> None:
    """A deleted project's rules go, and so do the rules that trusted it."""
    q.delete_rules_of_project(conn, project_id)
