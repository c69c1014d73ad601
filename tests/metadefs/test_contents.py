"""Objects, properties, tags and resource type associations of a namespace: Glance 33's api-ref
(metadefs-namespaces-objects/-properties/-tags.inc, metadefs-resourcetypes.inc) for shapes and
status codes, glance/api/v2/metadef_*.py for the messages."""

from __future__ import annotations

from typing import Any

import pytest

from spyglass.db.engine import Database
from spyglass.errors import Conflict
from spyglass.metadefs import elements, queries
from spyglass.timeutil import utcnow
from tests.api.helpers import message
from tests.conftest import Callers

NS = "/v2/metadefs/namespaces/Spy::Test"
CPU = {"name": "cpu_policy", "title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]}


def namespace(api: Callers, **body: Any) -> None:
    response = api.admin.post("/v2/metadefs/namespaces", json={"namespace": "Spy::Test", **body})
    assert response.status_code == 201, response.text


def test_objects_lifecycle(api: Callers) -> None:
    namespace(api, visibility="public")
    body = {
        "name": "Watchdog",
        "description": "How the watchdog acts",
        "required": ["action"],
        "properties": {"action": {"title": "Action", "type": "string", "enum": ["reset", "none"]}},
    }
    created = api.admin.post(f"{NS}/objects", json=body)
    assert created.status_code == 201
    doc = created.json()
    assert doc["self"] == f"{NS}/objects/Watchdog"
    assert doc["schema"] == "/v2/schemas/metadefs/object"
    assert doc["properties"] == body["properties"] and doc["required"] == ["action"]
    duplicate = api.admin.post(f"{NS}/objects", json=body)
    assert duplicate.status_code == 409
    assert message(duplicate) == (
        "A metadata definition object with name=Watchdog already exists in namespace=Spy::Test."
    )
    listed = api.bob.get(f"{NS}/objects").json()
    assert [o["name"] for o in listed["objects"]] == ["Watchdog"]
    assert api.bob.get(f"{NS}/objects/Watchdog").json()["description"] == "How the watchdog acts"
    updated = api.admin.put(f"{NS}/objects/Watchdog", json={"name": "Dog", "properties": {}})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Dog" and updated.json()["properties"] == {}
    missing = api.admin.get(f"{NS}/objects/Watchdog")
    assert missing.status_code == 404
    assert message(missing) == (
        "The metadata definition object with name=Watchdog was not found in namespace=Spy::Test."
    )
    assert api.bob.delete(f"{NS}/objects/Dog").status_code == 403
    assert api.admin.delete(f"{NS}/objects/Dog").status_code == 204
    assert api.admin.get(f"{NS}/objects").json()["objects"] == []


def test_object_properties_are_checked(api: Callers) -> None:
    namespace(api)
    bad = {"name": "o", "properties": {"p": {"title": "P"}}}
    assert api.admin.post(f"{NS}/objects", json=bad).status_code == 400
    assert api.admin.post(f"{NS}/objects", json={"description": "no name"}).status_code == 400


def test_properties_lifecycle(api: Callers) -> None:
    namespace(
        api, visibility="public", resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}]
    )
    created = api.admin.post(f"{NS}/properties", json=CPU)
    assert created.status_code == 201
    assert created.json() == CPU
    assert api.admin.post(f"{NS}/properties", json=CPU).status_code == 409
    assert api.admin.post(f"{NS}/properties", json={"name": "x", "type": "string"}).status_code == 400
    assert api.rita.get(f"{NS}/properties").json() == {
        "properties": {"cpu_policy": {k: v for k, v in CPU.items() if k != "name"}}
    }
    assert api.rita.get(f"{NS}/properties/cpu_policy").json() == CPU
    prefixed = api.rita.get(f"{NS}/properties/hw_cpu_policy", params={"resource_type": "OS::Glance::Image"})
    assert prefixed.status_code == 200 and prefixed.json()["name"] == "cpu_policy"
    wrong = api.rita.get(f"{NS}/properties/cpu_policy", params={"resource_type": "OS::Glance::Image"})
    assert wrong.status_code == 404
    renamed = api.admin.put(f"{NS}/properties/cpu_policy", json={**CPU, "name": "cpu_mode", "title": "Mode"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Mode"
    assert api.admin.get(f"{NS}/properties/cpu_policy").status_code == 404
    assert api.admin.delete(f"{NS}/properties/cpu_mode").status_code == 204
    assert api.admin.delete(f"{NS}/properties").status_code == 204


def test_tags_one_and_several(api: Callers) -> None:
    namespace(api, visibility="public")
    one = api.admin.post(f"{NS}/tags/first")
    assert one.status_code == 201
    assert one.json()["name"] == "first" and "created_at" in one.json()
    clash = api.admin.post(f"{NS}/tags/FIRST")
    assert clash.status_code == 409
    assert "case insensitive" in message(clash)
    # Several at once replace the namespace's tags...
    several = api.admin.post(f"{NS}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert several.status_code == 201
    assert several.json() == {"tags": [{"name": "a"}, {"name": "b"}]}
    # Newest first, ties broken by the later one first: Glance's created_at, id descending.
    assert api.bob.get(f"{NS}/tags").json() == {"tags": [{"name": "b"}, {"name": "a"}]}
    # ...or, with X-Openstack-Append, are added to them.
    appended = api.admin.post(
        f"{NS}/tags", json={"tags": [{"name": "c"}]}, headers={"X-Openstack-Append": "True"}
    )
    assert appended.status_code == 201
    assert [t["name"] for t in api.bob.get(f"{NS}/tags").json()["tags"]] == ["c", "b", "a"]
    twice = api.admin.post(f"{NS}/tags", json={"tags": [{"name": "d"}, {"name": "D"}]})
    assert twice.status_code == 409
    assert [t["name"] for t in api.bob.get(f"{NS}/tags").json()["tags"]] == ["c", "b", "a"]
    assert api.admin.put(f"{NS}/tags/a", json={"name": "alpha"}).json()["name"] == "alpha"
    assert api.admin.put(f"{NS}/tags/alpha", json={"name": "b"}).status_code == 409
    assert api.admin.get(f"{NS}/tags/b").status_code == 200
    assert api.admin.delete(f"{NS}/tags/b").status_code == 204
    assert api.admin.get(f"{NS}/tags/b").status_code == 404
    assert api.alice.delete(f"{NS}/tags").status_code == 403
    assert api.admin.delete(f"{NS}/tags").status_code == 204
    assert api.admin.get(f"{NS}/tags").json() == {"tags": []}


def test_resource_type_associations(api: Callers) -> None:
    namespace(api, visibility="public")
    assert api.alice.get("/v2/metadefs/resource_types").json() == {"resource_types": []}
    body = {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"}
    created = api.admin.post(f"{NS}/resource_types", json=body)
    assert created.status_code == 201
    assert {k: created.json()[k] for k in body} == body
    duplicate = api.admin.post(f"{NS}/resource_types", json=body)
    assert duplicate.status_code == 409
    assert message(duplicate) == (
        "The metadata definition resource-type association of resource-type=OS::Cinder::Volume to "
        "namespace=Spy::Test already exists."
    )
    assert api.alice.post(f"{NS}/resource_types", json={"name": "OS::Nova::Flavor"}).status_code == 403
    listed = api.alice.get(f"{NS}/resource_types").json()["resource_type_associations"]
    assert [a["name"] for a in listed] == ["OS::Cinder::Volume"]
    types = api.alice.get("/v2/metadefs/resource_types").json()["resource_types"]
    assert [t["name"] for t in types] == ["OS::Cinder::Volume"]
    assert api.admin.delete(f"{NS}/resource_types/OS::Nova::Flavor").status_code == 404
    assert api.admin.delete(f"{NS}/resource_types/OS::Cinder::Volume").status_code == 204
    assert api.alice.get(f"{NS}/resource_types").json() == {"resource_type_associations": []}
    # The resource type itself stays, as in Glance.
    assert len(api.alice.get("/v2/metadefs/resource_types").json()["resource_types"]) == 1


def test_protected_namespace_keeps_its_elements(api: Callers) -> None:
    namespace(api, protected=True, properties={"p": {"title": "P", "type": "string"}})
    api.admin.post(f"{NS}/resource_types", json={"name": "OS::Glance::Image"})
    response = api.admin.delete(f"{NS}/properties/p")
    assert response.status_code == 403
    assert message(response) == "Metadata definition property p is protected and cannot be deleted."
    assert api.admin.delete(f"{NS}/resource_types/OS::Glance::Image").status_code == 403
    assert api.admin.delete(f"{NS}/properties").status_code == 403


def test_tag_list_pages(api: Callers) -> None:
    """Glance's tag list takes limit, marker (a tag name), sort_key and sort_dir (no next link)."""
    namespace(api, visibility="public")
    api.admin.post(f"{NS}/tags", json={"tags": [{"name": n} for n in ("c", "a", "b")]})

    def names(**params: str) -> list[str]:
        response = api.alice.get(f"{NS}/tags", params=params)
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()["tags"]]

    assert names(sort_key="name", sort_dir="asc") == ["a", "b", "c"]
    assert names(sort_key="name", sort_dir="asc", limit="2") == ["a", "b"]
    assert names(sort_key="name", sort_dir="asc", marker="b") == ["c"]
    assert names(sort_key="name", marker="b") == ["a"]
    assert api.alice.get(f"{NS}/tags", params={"sort_dir": "up"}).status_code == 400
    assert api.alice.get(f"{NS}/tags", params={"sort_key": "colour"}).status_code == 400
    assert api.alice.get(f"{NS}/tags", params={"marker": "zzz"}).status_code == 404


def test_a_write_beaten_to_a_name_is_409(db: Database) -> None:
    """Two writers that both found the name free: the database's unique constraint decides, and
    the loser gets the same 409 as the look-up gives (PostgreSQL runs such writes side by side)."""
    with db.write() as conn:
        ns_id = queries.insert_namespace(
            conn,
            {
                "namespace": "Race",
                "visibility": "public",
                "protected": False,
                "owner": "p",
                "created_at": utcnow(),
            },
        )
        queries.insert_tag(conn, ns_id, "t", utcnow())
    conflict = elements.tag_conflict("T", "Race")
    with pytest.raises(Conflict, match="case insensitive"), db.write() as conn, elements.unique(conflict):
        queries.insert_tag(conn, ns_id, "T", utcnow())
