"""`spyglass metadefs load DIR`: files in Glance's metadef JSON format, with the meaning of
glance-manage db_load_metadefs's --merge, --prefer-new and --overwrite (glance/db/sqlalchemy/metadata.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spyglass import cli
from spyglass.db.engine import Database
from spyglass.metadefs.loader import LoadOptions, load_directory
from spyglass.settings import Settings
from tests.conftest import Callers

DEFINITION: dict[str, Any] = {
    "namespace": "Spy::Hardware",
    "display_name": "Hardware",
    "description": "Written for this test.",
    "visibility": "public",
    "protected": True,
    "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
    "properties": {"cpu_policy": {"title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]}},
    "objects": [{"name": "Watchdog", "properties": {"action": {"title": "Action", "type": "string"}}}],
    "tags": [{"name": "fast"}],
}


def write(directory: Path, document: dict[str, Any], name: str = "hardware.json") -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(json.dumps(document))


def test_load_then_show_through_the_api(db: Database, api: Callers, tmp_path: Path) -> None:
    write(tmp_path / "defs", DEFINITION)
    report = load_directory(db, tmp_path / "defs", LoadOptions())
    assert report.created == ["Spy::Hardware"]
    doc = api.bob.get("/v2/metadefs/namespaces/Spy::Hardware").json()
    assert doc["owner"] == "admin" and doc["protected"] is True
    assert doc["properties"] == DEFINITION["properties"]
    assert [o["name"] for o in doc["objects"]] == ["Watchdog"]
    assert doc["tags"] == [{"name": "fast"}]
    assert doc["resource_type_associations"][0]["prefix"] == "hw_"


def test_load_is_idempotent_and_merge_adds_only_what_is_missing(
    db: Database, api: Callers, tmp_path: Path
) -> None:
    defs = tmp_path / "defs"
    write(defs, DEFINITION)
    load_directory(db, defs, LoadOptions())
    assert load_directory(db, defs, LoadOptions()).skipped == ["Spy::Hardware"]
    changed = {
        **DEFINITION,
        "display_name": "Changed",
        "properties": {
            "cpu_policy": {"title": "Changed", "type": "string"},
            "cpu_threads": {"title": "Threads", "type": "integer"},
        },
        "tags": [{"name": "fast"}, {"name": "new"}],
    }
    write(defs, changed)
    assert load_directory(db, defs, LoadOptions()).skipped == ["Spy::Hardware"]
    assert load_directory(db, defs, LoadOptions(merge=True)).merged == ["Spy::Hardware"]
    doc = api.admin.get("/v2/metadefs/namespaces/Spy::Hardware").json()
    assert doc["display_name"] == "Hardware"
    assert doc["properties"]["cpu_policy"]["title"] == "CPU policy"
    assert doc["properties"]["cpu_threads"]["title"] == "Threads"
    assert sorted(t["name"] for t in doc["tags"]) == ["fast", "new"]
    load_directory(db, defs, LoadOptions(merge=True, prefer_new=True))
    doc = api.admin.get("/v2/metadefs/namespaces/Spy::Hardware").json()
    assert doc["display_name"] == "Changed"
    assert doc["properties"]["cpu_policy"]["title"] == "Changed"


def test_overwrite_drops_what_the_file_no_longer_has(db: Database, api: Callers, tmp_path: Path) -> None:
    defs = tmp_path / "defs"
    write(defs, DEFINITION)
    load_directory(db, defs, LoadOptions())
    write(defs, {**DEFINITION, "objects": [], "tags": []})
    report = load_directory(db, defs, LoadOptions(merge=True, overwrite=True))
    assert report.replaced == ["Spy::Hardware"]
    doc = api.admin.get("/v2/metadefs/namespaces/Spy::Hardware").json()
    assert "objects" not in doc and "tags" not in doc
    assert "cpu_policy" in doc["properties"]


def test_a_bad_file_is_reported_and_the_others_load(db: Database, tmp_path: Path) -> None:
    defs = tmp_path / "defs"
    write(defs, DEFINITION)
    write(defs, {"display_name": "no namespace"}, "bad.json")
    (defs / "broken.json").write_text("{not json")
    write(
        defs,
        {"namespace": "Unnamed", "tags": [{"name": "x"}], "objects": [{"description": "?"}]},
        "unnamed.json",
    )
    report = load_directory(db, defs, LoadOptions())
    assert report.created == ["Spy::Hardware"]
    assert set(report.failed) == {"bad.json", "broken.json", "unnamed.json"}
    assert "'namespace' is a required property" in report.failed["bad.json"]
    # Each file is one transaction: nothing of the failed one stays.
    again = load_directory(db, defs, LoadOptions())
    assert again.skipped == ["Spy::Hardware"] and "unnamed.json" in again.failed


def test_the_command(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defs = tmp_path / "defs"
    write(defs, DEFINITION)
    common = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        common += ["--database-url", settings.database_url]
    assert cli.main([*common, "metadefs", "load", str(defs)]) == 0
    assert "created: Spy::Hardware" in capsys.readouterr().out
    assert cli.main([*common, "metadefs", "load", str(defs)]) == 0
    assert "skipped: Spy::Hardware" in capsys.readouterr().out
    assert cli.main([*common, "metadefs", "load", "--prefer-new", str(defs)]) == 2
    assert cli.main([*common, "metadefs", "load", str(tmp_path / "nowhere")]) == 2


def test_files_exported_by_glance_load(db: Database, api: Callers, tmp_path: Path) -> None:
    """glance-manage db_export_metadefs writes null for absent values (glance/db/sqlalchemy/metadata.py)."""
    exported = {
        "namespace": "Spy::Exported",
        "display_name": "Exported",
        "description": None,
        "visibility": "public",
        "protected": False,
        "resource_type_associations": [
            {"name": "OS::Nova::Flavor", "prefix": None, "properties_target": None}
        ],
        "properties": {},
        "objects": [{"name": "O", "description": None, "properties": {}}],
        "tags": [],
    }
    write(tmp_path / "defs", exported)
    assert load_directory(db, tmp_path / "defs", LoadOptions()).created == ["Spy::Exported"]
    doc = api.alice.get("/v2/metadefs/namespaces/Spy::Exported").json()
    assert doc["resource_type_associations"][0]["name"] == "OS::Nova::Flavor"
    assert "prefix" not in doc["resource_type_associations"][0]
