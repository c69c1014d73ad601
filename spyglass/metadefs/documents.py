"""How metadata definitions look on the wire: Glance 33's documents, built from the query rows.
Links carry names as they are, unquoted, as Glance writes them.

Glance renders through WSME, which leaves out attributes without a value: so do these.
"""

from __future__ import annotations

from typing import Any

from spyglass.metadefs.queries import Association, MetadefObject, Namespace, Property, ResourceType, Tag
from spyglass.timeutil import isotime

# The attributes of a property that are kept and shown (Glance's PropertyType), besides its name.
PROPERTY_FIELDS = (
    "type",
    "title",
    "description",
    "operators",
    "default",
    "readonly",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
)


def _present(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def _times(row: Any) -> dict[str, Any]:
    return {"created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at)}


def namespace_href(name: str) -> str:
    return f"/v2/metadefs/namespaces/{name}"


def namespace(ns: Namespace) -> dict[str, Any]:
    return _present(
        {
            "namespace": ns.namespace,
            "display_name": ns.display_name,
            "description": ns.description,
            "visibility": ns.visibility,
            "protected": ns.protected,
            "owner": ns.owner,
            **_times(ns),
            "schema": "/v2/schemas/metadefs/namespace",
            "self": namespace_href(ns.namespace),
        }
    )


def property_schema(values: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a property: its known attributes with a value."""
    return {k: values[k] for k in PROPERTY_FIELDS if values.get(k) is not None}


def property_doc(prop: Property) -> dict[str, Any]:
    return {"name": prop.name, **prop.json_schema}


def properties(props: list[Property], prefix: str = "") -> dict[str, Any]:
    return {prefix + p.name: dict(p.json_schema) for p in props}


def metadef_object(ns_name: str, obj: MetadefObject, prefix: str = "") -> dict[str, Any]:
    return _present(
        {
            "name": obj.name,
            "description": obj.description,
            "required": [prefix + name for name in obj.required],
            "properties": {prefix + k: v for k, v in obj.properties.items()},
            **_times(obj),
            "schema": "/v2/schemas/metadefs/object",
            "self": f"{namespace_href(ns_name)}/objects/{obj.name}",
        }
    )


def tag(t: Tag) -> dict[str, Any]:
    return _present({"name": t.name, **_times(t)})


def association(a: Association) -> dict[str, Any]:
    return _present(
        {"name": a.name, "prefix": a.prefix, "properties_target": a.properties_target, **_times(a)}
    )


def resource_type(rt: ResourceType) -> dict[str, Any]:
    return _present({"name": rt.name, **_times(rt)})
