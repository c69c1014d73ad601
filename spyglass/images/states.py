"""The image status state machine, as a table, and its one transition function."""

from __future__ import annotations

from spyglass.errors import Conflict

QUEUED = "queued"
SAVING = "saving"
ACTIVE = "active"
KILLED = "killed"
DELETED = "deleted"
UPLOADING = "uploading"
IMPORTING = "importing"
PENDING_DELETE = "pending_delete"
DEACTIVATED = "deactivated"

ALL = (QUEUED, SAVING, ACTIVE, KILLED, DELETED, UPLOADING, IMPORTING, PENDING_DELETE, DEACTIVATED)

# status -> the statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    # queued -> importing: a web-download import starts from an image without data.
    QUEUED: frozenset({SAVING, UPLOADING, IMPORTING, ACTIVE, PENDING_DELETE, DELETED}),
    SAVING: frozenset({ACTIVE, KILLED, QUEUED, PENDING_DELETE, DELETED}),
    UPLOADING: frozenset({IMPORTING, QUEUED, PENDING_DELETE, DELETED}),
    IMPORTING: frozenset({ACTIVE, QUEUED, PENDING_DELETE, DELETED}),
    ACTIVE: frozenset({PENDING_DELETE, DEACTIVATED, DELETED}),
    KILLED: frozenset({PENDING_DELETE, DELETED}),
    # Restore (spyglass.recycle) returns an image to the status it had when it was deleted.
    PENDING_DELETE: frozenset({QUEUED, ACTIVE, KILLED, DEACTIVATED, DELETED}),
    DEACTIVATED: frozenset({ACTIVE, PENDING_DELETE, DELETED}),
    DELETED: frozenset(),
}


def check_transition(current: str, target: str) -> None:
    """Raise Conflict when the machine does not allow current -> target."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise Conflict(f"Image status transition from {current} to {target} is not allowed")
