"""`spyglass metadefs load DIR`: definitions written in Glance's metadef JSON format (one namespace
per file, with its resource_type_associations, properties, objects and tags) into the database.

The options mean what glance-manage db_load_metadefs's mean: by default a namespace that already
exists is left alone, so a second run changes nothing; `merge` adds to an existing namespace what
the file has and it lacks; `prefer_new` (with merge) also replaces what both have with the file's
version; `overwrite` drops an existing namespace and loads it again from the file. Each file is
one transaction: a file that fails leaves its namespace as it was, and the others still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from spyglass.db.engine import Database
from spyglass.errors import SpyglassError
from spyglass.metadefs import documents, elements, queries, schemas
from spyglass.timeutil import utcnow

# Glance's loader gives namespaces without an owner this one.
DEFAULT_OWNER = "admin"


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # file name -> why it was not loaded
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    merge: bool = False
    prefer_new: bool = False
    overwrite: bool = False


def load_directory(db: Database, directory: Path, options: LoadOptions) -> LoadReport:
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    report = LoadReport()
    for path in sorted(p for p in directory.iterdir() if p.suffix == ".json" and p.is_file()):
        try:
            document = _read(path)
            with db.write() as conn:
                outcome = _load(conn, document, options)
        except (OSError, ValueError, SpyglassError) as exc:
            report.failed[path.name] = getattr(exc, "message", None) or str(exc)
            continue
        getattr(report, outcome).append(document["namespace"])
    return report


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return schemas.validate("namespace", _without_nulls(document))


def _without_nulls(document: Any) -> Any:
    """The document without its null attributes: files that glance-manage db_export_metadefs
    writes say `"prefix": null` and `"description": null` where a value is absent."""
    if not isinstance(document, dict):
        return document
    cleaned = {k: v for k, v in document.items() if v is not None}
    for key in ("resource_type_associations", "objects", "tags"):
        if isinstance(cleaned.get(key), list):
            cleaned[key] = [
                {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
                for item in cleaned[key]
            ]
    return cleaned


def _namespace_values(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": document["namespace"],
        "display_name": document.get("display_name"),
        "description": document.get("description"),
        "visibility": document.get("visibility") or "private",
        "protected": bool(document.get("protected") or False),
        "owner": document.get("owner") or DEFAULT_OWNER,
    }


def _load(conn: Connection, document: dict[str, Any], options: LoadOptions) -> str:
    """Load one namespace; the name of the report list it goes in."""
    name = document["namespace"]
    now = utcnow()
    existing = queries.namespace_by_name(conn, name)
    if existing is not None and options.overwrite:
        queries.delete_namespace(conn, existing.id)
    elif existing is not None:
        if not options.merge:
            return "skipped"
        if options.prefer_new:
            queries.update_namespace(conn, existing.id, {**_namespace_values(document), "updated_at": now})
        _merge(conn, existing.id, document, now, options.prefer_new)
        return "merged"
    values = {**_namespace_values(document), "created_at": now, "updated_at": now}
    ns_id = queries.insert_namespace(conn, values)
    _merge(conn, ns_id, document, now, prefer_new=False)
    return "replaced" if existing is not None else "created"


def _merge(conn: Connection, ns_id: int, document: dict[str, Any], now: Any, prefer_new: bool) -> None:
    """Add what the namespace lacks; with `prefer_new`, also replace what it has."""
    name = document["namespace"]
    associations = {a.name: a for a in queries.associations_of(conn, [ns_id])[ns_id]}
    for body in document.get("resource_type_associations") or []:
        rt = elements.named(body, "resource_type_association")
        if rt not in associations:
            elements.associate(conn, ns_id, name, body, now, protected=True)
        elif prefer_new:
            changes = {"prefix": body.get("prefix"), "properties_target": body.get("properties_target")}
            queries.update_association(
                conn, ns_id, associations[rt].resource_type_id, {**changes, "updated_at": now}
            )
    for prop_name, schema in (document.get("properties") or {}).items():
        found = queries.property_by_name(conn, ns_id, prop_name)
        if found is None:
            elements.add_property(conn, ns_id, name, prop_name, schema, now)
        elif prefer_new:
            changes = {"json_schema": documents.property_schema(schema), "updated_at": now}
            queries.update_property(conn, found.id, changes)
    for body in document.get("objects") or []:
        values = elements.object_values(body)
        obj = queries.object_by_name(conn, ns_id, values["name"])
        if obj is None:
            elements.add_object(conn, ns_id, name, values, now)
        elif prefer_new:
            queries.update_object(conn, obj.id, {**values, "updated_at": now})
    for body in document.get("tags") or []:
        tag = elements.named(body, "tag")
        if queries.tag_by_name(conn, ns_id, tag) is None:
            elements.add_tag(conn, ns_id, name, tag, now)
