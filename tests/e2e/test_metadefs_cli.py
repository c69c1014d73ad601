"""Metadata definitions with the real `openstack image metadef ...` commands (python-openstackclient
through openstacksdk), as an operator and a dashboard user drive them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.clients import glance
from tests.e2e.conftest import BIN, Server, database_env

A, B, ADMIN = "spyglass-a", "spyglass-b", "spyglass-admin"
NS = "Spy::E2E"


def _by_field(rows: Any) -> dict[str, Any]:
    """`-f json` of a ShowOne is an object; of some commands a list of Field/Value rows."""
    if isinstance(rows, dict):
        return rows
    return {row["Field"]: row["Value"] for row in rows}


def test_namespace_lifecycle(server: Server) -> None:
    created = server.openstack_json(
        ADMIN, "image", "metadef", "namespace", "create", NS, "--public", "--display-name", "E2E",
        "--description", "made by the test",
    )  # fmt: skip
    assert created["namespace"] == NS
    assert created["visibility"] == "public"
    names = [n["namespace"] for n in server.openstack_json(A, "image", "metadef", "namespace", "list")]
    assert NS in names
    shown = server.openstack_json(B, "image", "metadef", "namespace", "show", NS)
    assert shown["display_name"] == "E2E"
    # Only admins write metadata definitions (Glance 33's defaults).
    refused = server.openstack(A, "image", "metadef", "namespace", "create", "Mine", check=False)
    assert refused.returncode != 0
    server.openstack(
        ADMIN, "image", "metadef", "namespace", "set", NS, "--public", "--description", "changed"
    )
    shown = server.openstack_json(A, "image", "metadef", "namespace", "show", NS)
    assert shown["description"] == "changed"
    server.openstack(ADMIN, "image", "metadef", "namespace", "set", NS, "--public", "--tag", "fast")
    shown = server.openstack_json(ADMIN, "image", "metadef", "namespace", "show", NS)
    assert "fast" in json.dumps(shown["tags"])
    server.openstack(ADMIN, "image", "metadef", "namespace", "set", NS, "--public", "--tag", "slow")
    server.openstack(ADMIN, "image", "metadef", "namespace", "unset", NS, "--tag", "fast")
    shown = server.openstack_json(ADMIN, "image", "metadef", "namespace", "show", NS)
    assert "fast" not in json.dumps(shown["tags"]) and "slow" in json.dumps(shown["tags"])
    server.openstack(ADMIN, "image", "metadef", "namespace", "unset", NS, "--all-tags")
    shown = server.openstack_json(ADMIN, "image", "metadef", "namespace", "show", NS)
    assert not shown.get("tags")
    server.openstack(ADMIN, "image", "metadef", "namespace", "delete", NS)
    gone = server.openstack(A, "image", "metadef", "namespace", "show", NS, check=False)
    assert gone.returncode != 0


def test_objects_and_properties(server: Server) -> None:
    ns = "Spy::Parts"
    server.openstack(ADMIN, "image", "metadef", "namespace", "create", ns, "--public")
    obj = server.openstack_json(ADMIN, "image", "metadef", "object", "create", "--namespace", ns, "Watchdog")
    assert obj["name"] == "Watchdog"
    listed = server.openstack_json(A, "image", "metadef", "object", "list", ns)
    assert [o["name"] for o in listed] == ["Watchdog"]
    shown = _by_field(server.openstack_json(A, "image", "metadef", "object", "show", ns, "Watchdog"))
    assert shown["name"] == "Watchdog"
    server.openstack(ADMIN, "image", "metadef", "object", "update", ns, "Watchdog", "--name", "Dog")
    assert [o["name"] for o in server.openstack_json(A, "image", "metadef", "object", "list", ns)] == ["Dog"]
    server.openstack(ADMIN, "image", "metadef", "object", "delete", ns, "Dog")
    assert server.openstack_json(A, "image", "metadef", "object", "list", ns) == []

    prop = server.openstack_json(
        ADMIN, "image", "metadef", "property", "create", "--name", "cpu_policy", "--title", "CPU policy",
        "--type", "string", "--schema", json.dumps({"enum": ["shared", "dedicated"]}), ns,
    )  # fmt: skip
    assert prop["name"] == "cpu_policy"
    props = server.openstack_json(A, "image", "metadef", "property", "list", ns)
    assert [p["name"] for p in props] == ["cpu_policy"]
    shown = server.openstack_json(A, "image", "metadef", "property", "show", ns, "cpu_policy")
    assert shown["title"] == "CPU policy"
    server.openstack(
        ADMIN, "image", "metadef", "property", "set", ns, "cpu_policy", "--title", "CPU pinning",
    )  # fmt: skip
    shown = server.openstack_json(A, "image", "metadef", "property", "show", ns, "cpu_policy")
    assert shown["title"] == "CPU pinning"
    server.openstack(ADMIN, "image", "metadef", "property", "delete", ns, "cpu_policy")
    assert server.openstack_json(A, "image", "metadef", "property", "list", ns) == []
    server.openstack(ADMIN, "image", "metadef", "namespace", "delete", ns)


def test_resource_type_associations(server: Server) -> None:
    ns = "Spy::Types"
    server.openstack(ADMIN, "image", "metadef", "namespace", "create", ns, "--public")
    made = server.openstack_json(
        ADMIN, "image", "metadef", "resource", "type", "association", "create", ns, "OS::Cinder::Volume",
        "--properties-target", "image",
    )  # fmt: skip
    assert made["name"] == "OS::Cinder::Volume"
    listed = server.openstack_json(A, "image", "metadef", "resource", "type", "association", "list", ns)
    assert [a["Name"] if "Name" in a else a["name"] for a in listed] == ["OS::Cinder::Volume"]
    types = server.openstack_json(A, "image", "metadef", "resource", "type", "list")
    assert "OS::Cinder::Volume" in json.dumps(types)
    server.openstack(
        ADMIN, "image", "metadef", "resource", "type", "association", "delete", ns, "OS::Cinder::Volume"
    )
    assert server.openstack_json(A, "image", "metadef", "resource", "type", "association", "list", ns) == []
    server.openstack(ADMIN, "image", "metadef", "namespace", "delete", ns)


def test_loaded_definitions_are_offered(server: Server, tmp_path: Path) -> None:
    definition = {
        "namespace": "Spy::Loaded",
        "visibility": "public",
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
        "properties": {"rng_model": {"title": "RNG model", "type": "string"}},
        "objects": [
            {
                "name": "Watchdog",
                "required": ["watchdog_action"],
                "properties": {"watchdog_action": {"title": "Action", "type": "string", "enum": ["reset"]}},
            }
        ],
    }
    (tmp_path / "loaded.json").write_text(json.dumps(definition))
    load = [str(BIN / "spyglass"), "--data-dir", str(server.data_dir), "metadefs", "load", str(tmp_path)]
    env = {**os.environ, **database_env(server.data_dir)}
    for outcome in ("created", "skipped"):
        result = subprocess.run(load, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert f"{outcome}: Spy::Loaded" in result.stdout
    props = server.openstack_json(A, "image", "metadef", "property", "list", "Spy::Loaded")
    assert [p["name"] for p in props] == ["rng_model"]
    associations = server.openstack_json(
        B, "image", "metadef", "resource", "type", "association", "list", "Spy::Loaded"
    )
    assert "OS::Glance::Image" in json.dumps(associations)
    prop = server.openstack_json(
        A, "image", "metadef", "object", "property", "show", "Spy::Loaded", "Watchdog", "watchdog_action"
    )
    assert prop["title"] == "Action"


def test_glanceclient_metadefs(server: Server) -> None:
    """python-glanceclient builds its metadef models from /v2/schemas/metadefs/* and checks every
    document it sends and receives against them."""
    admin, reader = glance(server, ADMIN), glance(server, A)
    ns = "Spy::Glanceclient"
    admin.metadefs_namespace.create(namespace=ns, visibility="public", display_name="GC")
    admin.metadefs_resource_type.associate(ns, name="OS::Glance::Image", prefix="gc_")
    admin.metadefs_property.create(ns, name="mode", title="Mode", type="string", enum=["a", "b"])
    admin.metadefs_object.create(ns, name="Thing", properties={"size": {"title": "Size", "type": "integer"}})
    # A generator: the request goes when it is consumed.
    assert len(list(admin.metadefs_tag.create_multiple(ns, tags=["one", "two"]))) == 2
    shown = reader.metadefs_namespace.get(ns, resource_type="OS::Glance::Image")
    assert shown["display_name"] == "GC"
    assert "gc_mode" in shown["properties"]
    listed = list(reader.metadefs_namespace.list(filters={"resource_types": ["OS::Glance::Image"]}))
    assert ns in [n["namespace"] for n in listed]
    assert [p["name"] for p in reader.metadefs_property.list(ns)] == ["mode"]
    assert [o["name"] for o in reader.metadefs_object.list(ns)] == ["Thing"]
    assert sorted(t["name"] for t in reader.metadefs_tag.list(ns)) == ["one", "two"]
    types = [t["name"] for t in reader.metadefs_resource_type.list()]
    assert "OS::Glance::Image" in types
    admin.metadefs_namespace.update(ns, display_name="GC2", visibility="public")
    assert reader.metadefs_namespace.get(ns)["display_name"] == "GC2"
    admin.metadefs_namespace.delete(ns)
