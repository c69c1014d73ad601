"""Glance's two JSON-patch dialects for images, parsed into changes and applied to a document.

`application/openstack-images-v2.1-json-patch` is RFC 6902 restricted to `add`, `remove` and
`replace` of one top-level attribute (`{"op": "replace", "path": "/name", "value": ...}`).
`application/openstack-images-v2.0-json-patch` also accepts the older form
(`{"replace": "/name", "value": ...}`), and there `add` refuses an attribute that is already present.
Pure functions: no database, no authorization (spyglass.images does both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from spyglass.errors import Conflict, Forbidden, Invalid
from spyglass.images.schemas import read_only_attributes

V20 = "application/openstack-images-v2.0-json-patch"
V21 = "application/openstack-images-v2.1-json-patch"
MEDIA_TYPES = (V20, V21)
OPERATIONS = ("add", "remove", "replace")
# Columns a client may write through create or PATCH.
WRITABLE_COLUMNS = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "owner",
)
# Attributes every image has: they can be replaced, never removed, and are "present" for add.
CORE = frozenset({*WRITABLE_COLUMNS, "tags"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"
# Spyglass writes its own properties (a copy's provenance, spyglass.copies): owners could forge
# them. Only these are the owner's to set (the sharing-safety opt-in, spyglass.safeguards).
SPYGLASS_PREFIX = "spyglass_"
# spyglass_family groups an owner's successive images (spyglass.images.families).
OWNER_SETTABLE = frozenset({"spyglass_protect_consumers", "spyglass_family"})
# webob's explanations, which Glance puts above the specific message of some refusals.
ACCESS_DENIED = "Access was denied to this resource."
CONFLICT = "There was a conflict when trying to complete your request."


@dataclass(frozen=True)
class Change:
    op: str
    name: str
    value: Any = None


def parse(ops: Any, media_type: str) -> list[Change]:
    """The request body -> changes, refusing malformed, read-only and reserved ones (before any
    image is looked up, as Glance does)."""
    if not isinstance(ops, list):
        raise Invalid("Request body must be a JSON array of operation objects.")
    return [_parse_one(raw, media_type) for raw in ops]


def apply(doc: dict[str, Any], changes: list[Change], media_type: str) -> dict[str, Any]:
    """A copy of the editable image document with the changes applied in order."""
    result = dict(doc)
    for change in changes:
        _apply_one(result, change, strict_add=media_type == V20)
    return result


def _parse_one(raw: Any, media_type: str) -> Change:
    if not isinstance(raw, dict):
        raise Invalid("Operations must be JSON objects.")
    if media_type == V20 and "op" not in raw:
        op, pointer = _old_form(raw)
    else:
        op, pointer = _rfc_form(raw)
    name = _attribute(pointer)
    _check_writable(name)
    if op != "remove" and "value" not in raw:
        raise Invalid(f'Operation "{op}" requires a member named "value".')
    return Change(op, name, raw.get("value"))


def _rfc_form(raw: dict[str, Any]) -> tuple[str, Any]:
    op = raw.get("op")
    available = ", ".join(OPERATIONS)
    if op is None:
        raise Invalid(
            f"Unable to find `op` in JSON Schema change. It must be one of the following: {available}."
        )
    if op not in OPERATIONS:
        raise Invalid(f"Invalid operation: `{op}`. It must be one of the following: {available}.")
    if "path" not in raw:
        raise Invalid("Unable to find 'path' in JSON Schema change")
    return str(op), raw["path"]


def _old_form(raw: dict[str, Any]) -> tuple[str, Any]:
    named = [op for op in OPERATIONS if op in raw]
    if len(named) > 1:
        raise Invalid('Operation objects must contain only one member named "add", "remove", or "replace".')
    if not named:
        raise Invalid(
            'Operation objects must contain exactly one member named "add", "remove", or "replace".'
        )
    return named[0], raw[named[0]]


def _attribute(pointer: Any) -> str:
    """The one attribute a JSON pointer names; Glance accepts no deeper paths (not even /tags/-)."""
    if not isinstance(pointer, str):
        raise Invalid(f"Pointer `{pointer}` is not a string.")
    if not pointer.startswith("/"):
        raise Invalid(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise Invalid(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise Invalid(f'Pointer `{pointer}` end with "/".')
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise Invalid(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.')
    parts = [p.replace("~1", "/").replace("~0", "~").strip() for p in pointer[1:].split("/")]
    if len(parts) != 1:
        raise Invalid(f"Invalid JSON pointer for this resource: '/{'/'.join(parts)}'")
    if not parts[0]:
        raise Invalid(f"Pointer `{pointer}` does not contains valid token.")
    return parts[0]


def _check_writable(name: str) -> None:
    if name == "id" or name in read_only_attributes():
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if is_reserved(name):
        raise Forbidden(f"Attribute '{name}' is reserved.")
    if name == "locations":
        raise Forbidden("It's not allowed to update locations if locations are invisible.")


def is_reserved(name: str) -> bool:
    """May no client write this property (Glance's reserved names, and Spyglass's own)?"""
    if name.startswith(SPYGLASS_PREFIX):
        return name not in OWNER_SETTABLE
    return name in RESERVED or name.startswith(RESERVED_PREFIX)


def _apply_one(doc: dict[str, Any], change: Change, *, strict_add: bool) -> None:
    present = change.name in CORE or change.name in doc
    if change.op == "add" and strict_add and present:
        raise Conflict(CONFLICT, f"Property {change.name} already present.")
    if change.op == "remove" and change.name in CORE:
        raise Forbidden(ACCESS_DENIED, f"Property {change.name} may not be removed.")
    if change.op != "add" and not present:
        raise Conflict(CONFLICT, f"Property {change.name} does not exist.")
    if change.op == "remove":
        del doc[change.name]
    else:
        doc[change.name] = change.value
