"""What the identity API accepts: request-body schemas and how bodies and query flags are read.

Bodies are checked here, before any lock is taken, and come out as plain dicts keyed by wire names.
The messages are Keystone's, which clients show verbatim.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from spyglass.errors import Invalid

Row = dict[str, Any]

_TEXT = {"type": ["string", "null"]}
_BOOL = {"type": "boolean"}
_REF = {"type": ["string", "null"], "maxLength": 64}
_SECRET = {"type": ["string", "null"], "maxLength": 4096}
# Resource options (immutable) and tags are not stored: only the empty forms clients send are
# accepted. `x-unsupported` is the message shown instead of the schema's own.
_OPTIONS = {"type": "object", "maxProperties": 0, "x-unsupported": "Resource options are not supported."}
_TAGS = {"type": "array", "maxItems": 0, "x-unsupported": "Tags are not supported."}
_IS_DOMAIN = {"enum": [False, None], "x-unsupported": "Projects acting as domains are not supported."}
_ROLE_DOMAIN = {"type": "null", "x-unsupported": "Domain-specific roles are not supported."}


def _name(length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": length, "pattern": r"\S"}


def _validator(fields: dict[str, Any], *required: str) -> Draft202012Validator:
    schema = {
        "type": "object",
        "properties": fields,
        "required": list(required),
        "additionalProperties": False,
    }
    return Draft202012Validator(schema)


_DOMAIN = {
    "id": _REF,
    "name": _name(64),
    "description": _TEXT,
    "enabled": _BOOL,
    "options": _OPTIONS,
    "tags": _TAGS,
}
_PROJECT = _DOMAIN | {"domain_id": _REF, "parent_id": _REF, "is_domain": _IS_DOMAIN}
_USER = {
    "id": _REF,
    "name": _name(255),
    "domain_id": _REF,
    "password": _SECRET,
    "email": {"type": ["string", "null"], "maxLength": 255},
    "description": _TEXT,
    "enabled": _BOOL,
    "default_project_id": _REF,
    "options": _OPTIONS,
}
_ROLE = {"id": _REF, "name": _name(255), "description": _TEXT, "domain_id": _ROLE_DOMAIN, "options": _OPTIONS}
_PASSWORD_CHANGE = {
    "password": {"type": "string", "maxLength": 4096},
    "original_password": {"type": "string"},
}

SCHEMAS = {
    ("domain", "create"): _validator(_DOMAIN, "name"),
    ("domain", "update"): _validator(_DOMAIN),
    ("project", "create"): _validator(_PROJECT, "name"),
    ("project", "update"): _validator(_PROJECT),
    ("user", "create"): _validator(_USER, "name"),
    ("user", "update"): _validator(_USER),
    ("role", "create"): _validator(_ROLE, "name"),
    ("role", "update"): _validator(_ROLE),
    ("user", "password"): _validator(_PASSWORD_CHANGE, "password", "original_password"),
}


# Fields naming another entity by id. Keystone allows only letters, digits and hyphens in ids;
# Spyglass keeps accepting other printable ids, but never control characters.
REFERENCES = frozenset({"id", "domain_id", "parent_id", "default_project_id"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def check_characters(entity: Row) -> None:
    """Refuse NUL in any text (PostgreSQL cannot store it) and any control character in an id.

    Names and descriptions may hold other control characters, as Keystone's allow them."""
    for field, value in entity.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise Invalid(f"Invalid input for field '{field}': NUL characters are not allowed.")
        if field in REFERENCES and has_control(value):
            raise Invalid(f"Invalid input for field '{field}': control characters are not allowed.")


def read_body(body: Any, kind: str, use: str) -> Row:
    """The entity inside a `{"kind": {...}}` request body, checked against its schema."""
    entity = body.get(kind) if isinstance(body, dict) else None
    if not isinstance(entity, dict):
        raise Invalid(f"Expecting to find {kind} in request body.")
    error = best_match(SCHEMAS[kind, use].iter_errors(entity))
    if error is None:
        check_characters(entity)
        return dict(entity)
    field = str(error.path[0]) if error.path else kind
    message = error.schema.get("x-unsupported", error.message) if isinstance(error.schema, dict) else ""
    raise Invalid(f"Invalid input for field '{field}': {message or error.message}")


def read_changes(body: Any, kind: str, *ignored: str) -> Row:
    """An update body without the fields accepted but not stored; a null description becomes empty."""
    changes = read_body(body, kind, "update")
    for field in ignored:
        changes.pop(field, None)
    if "description" in changes:
        changes["description"] = text(changes["description"])
    return changes


def unchanged(row: Row, changes: Row, *fields: str) -> None:
    """Refuse changes to fields that cannot change; naming their current value is allowed."""
    for field in fields:
        if changes.pop(field, row[field]) != row[field]:
            raise Invalid(f"Update of `{field}` is not allowed.")


def text(value: Any) -> str:
    return "" if value is None else str(value)


def flag(name: str, raw: str) -> bool:
    """A boolean filter such as `?enabled=false`: anything but a clear yes or no is refused."""
    word = raw.strip().lower()
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise Invalid(f"Invalid value for query parameter {name}: {raw!r} (expected true or false).")


def present(raw: str) -> bool:
    """Keystone's flag parameters: present means true (`?effective`), unless given as 0 or false."""
    return raw.strip().lower() not in ("0", "false", "no", "off")
