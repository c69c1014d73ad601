"""The metadata definition JSON Schemas: served at /v2/schemas/metadefs/* and used to validate
request bodies (one schema, two uses). Their shapes are Glance 33's, which clients read."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from jsonschema import Draft4Validator

from spyglass.errors import Forbidden, Invalid

NAMES = (
    "namespace",
    "namespaces",
    "object",
    "objects",
    "property",
    "properties",
    "tag",
    "tags",
    "resource_type",
    "resource_types",
)
_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
# Attributes the server sets: a request that carries one is refused (Glance answers 403).
READ_ONLY = ("self", "schema", "created_at", "updated_at")


def _timestamp(what: str) -> dict[str, Any]:
    return {"type": "string", "readOnly": True, "description": what, "format": "date-time"}


def _timestamps(thing: str) -> dict[str, Any]:
    return {
        "created_at": _timestamp(f"Date and time of {thing} creation"),
        "updated_at": _timestamp(f"Date and time of the last {thing} modification"),
    }


_LINKS = {"schema": {"readOnly": True, "type": "string"}, "self": {"readOnly": True, "type": "string"}}

_PROPERTY_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 80},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string", "enum": _TYPES},
    "required": {"$ref": "#/definitions/stringArray"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/positiveInteger"},
    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": _TYPES}, "enum": {"type": "array"}},
    },
    "maxItems": {"$ref": "#/definitions/positiveInteger"},
    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": False},
    "additionalItems": {"type": "boolean"},
}


def _definitions(*, with_property: bool = True, string_array_min: int | None = None) -> dict[str, Any]:
    string_array: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    if string_array_min is not None:
        string_array["minItems"] = string_array_min
    definitions: dict[str, Any] = {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": string_array,
    }
    if with_property:
        definitions["property"] = {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "type"],
                "properties": _PROPERTY_FIELDS,
            },
        }
    return definitions


def _item(name: str, properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    schema = {"name": name, "properties": properties, "additionalProperties": False, **extra}
    if required:
        schema["required"] = required
    return schema


def _namespace() -> dict[str, Any]:
    properties = {
        "namespace": {"type": "string", "description": "The unique namespace text.", "maxLength": 80},
        "display_name": {
            "type": "string",
            "description": "The user friendly name for the namespace. Used by UI if available.",
            "maxLength": 80,
        },
        "description": {
            "type": "string",
            "description": "Provides a user friendly description of the namespace.",
            "maxLength": 500,
        },
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": ["public", "private"],
        },
        "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
        "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 255},
        "created_at": _timestamp("Date and time of namespace creation"),
        "updated_at": _timestamp("Date and time of the last namespace modification"),
        **_LINKS,
        "resource_type_associations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "prefix": {"type": "string"},
                    "properties_target": {"type": "string"},
                },
            },
        },
        "properties": {"$ref": "#/definitions/property"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                },
            },
        },
        "tags": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    }
    return _item("namespace", properties, ["namespace"], definitions=_definitions())


def _object() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": 80},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        **_LINKS,
        **_timestamps("object"),
    }
    return _item("object", properties, ["name"], definitions=_definitions())


def _property(*, require_name: bool = True) -> dict[str, Any]:
    required = ["type", "title", *(["name"] if require_name else [])]
    definitions = _definitions(with_property=False, string_array_min=1)
    return _item("property", dict(_PROPERTY_FIELDS), required, definitions=definitions)


def _tag() -> dict[str, Any]:
    properties = {"name": {"type": "string", "maxLength": 80}, **_timestamps("tag")}
    return _item("tag", properties, ["name"])


def _tags_body() -> dict[str, Any]:
    """The body of POST .../tags, several tags at once."""
    tag = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    return _item("tags", {"tags": {"type": "array", "items": tag}}, [])


def _association() -> dict[str, Any]:
    properties = {
        "name": {
            "type": "string",
            "description": "Resource type names should be aligned with Heat resource types whenever "
            "possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html",
            "maxLength": 80,
        },
        "prefix": {
            "type": "string",
            "description": "Specifies the prefix to use for the given resource type. Any properties in "
            "the namespace should be prefixed with this prefix when being applied to the specified "
            "resource type. Must include prefix separator (e.g. a colon :).",
            "maxLength": 80,
        },
        "properties_target": {
            "type": "string",
            "description": "Some resource types allow more than one key / value pair per instance.  For "
            "example, Cinder allows user and image metadata on volumes. Only the image properties "
            "metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace "
            "target to remove the ambiguity.",
            "maxLength": 80,
        },
        "created_at": _timestamp("Date and time of resource type association"),
        "updated_at": _timestamp("Date and time of the last resource type association modification"),
    }
    return _item("resource_type_association", properties, ["name"])


_COLLECTION_PARTS = {"first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"}}
_COLLECTION_LINKS = [
    {"rel": "first", "href": "{first}"},
    {"rel": "next", "href": "{next}"},
    {"rel": "describedby", "href": "{schema}"},
]


def _collection(name: str, item: dict[str, Any], *, keyed: bool = False) -> dict[str, Any]:
    """A list of items (or, `keyed`, an object of items by name), definitions hoisted to the top."""
    item = dict(item)
    definitions = item.pop("definitions", None)
    holder = {"type": "object", "additionalProperties": item} if keyed else {"type": "array", "items": item}
    schema: dict[str, Any] = {
        "name": name,
        "properties": {name: holder, **_COLLECTION_PARTS},
        "links": _COLLECTION_LINKS,
    }
    if definitions:
        schema["definitions"] = definitions
    return schema


@cache
def schema(name: str) -> dict[str, Any]:
    """The schema served at /v2/schemas/metadefs/{name}."""
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "namespace": _namespace,
        "namespaces": lambda: _collection("namespaces", _namespace()),
        "object": _object,
        "objects": lambda: _collection("objects", _object()),
        "property": _property,
        "properties": lambda: _collection("properties", _property(require_name=False), keyed=True),
        "tag": _tag,
        "tags": lambda: _collection("tags", _tag()),
        "resource_type": _association,
        "resource_types": lambda: _collection("resource_type_associations", _association()),
        "tags_body": _tags_body,
        "properties_item": lambda: _property(require_name=False),
    }
    return builders[name]()


@cache
def _validator(name: str) -> Draft4Validator:
    return Draft4Validator(schema(name))


def validate(name: str, body: Any, read_only: tuple[str, ...] = READ_ONLY) -> dict[str, Any]:
    """The request body, checked against the schema `name`: read-only attributes are 403 and a body
    the schema refuses is 400, with Glance's messages."""
    if not isinstance(body, dict):
        raise Invalid(f"Provided object does not match schema '{schema(name)['name']}': not an object")
    for key in read_only:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    error = next(
        iter(sorted(_validator(name).iter_errors(body), key=lambda e: [str(p) for p in e.path])), None
    )
    if error is not None:
        where = "/".join(str(p) for p in error.path)
        reason = f"{error.message} (at '{where}')" if where else error.message
        raise Invalid(f"Provided object does not match schema '{schema(name)['name']}': {reason}")
    return body
