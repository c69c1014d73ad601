"""Namespaces through the API: Glance 33's api-ref (metadefs-namespaces.inc) for shapes and status
codes, glance/api/v2/metadef_namespaces.py and glance/policies/metadef.py for the rules and messages."""

from __future__ import annotations

from typing import Any

from spyglass.db.engine import Database
from spyglass.db.migrate import schema_differences
from tests.api.helpers import message
from tests.conftest import Callers

NS = "/v2/metadefs/namespaces"


def create(api: Callers, **body: Any) -> dict[str, Any]:
    response = api.admin.post(NS, json={"namespace": "Spy::Test", **body})
    assert response.status_code == 201, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_the_migration_matches_the_tables(db: Database) -> None:
    assert schema_differences(db) == []


def test_create_answers_201_with_the_document_and_defaults(api: Callers, world: Any) -> None:
    response = api.admin.post(NS, json={"namespace": "Spy::Test", "display_name": "Test"})
    assert response.status_code == 201
    assert response.headers["location"].endswith("/v2/metadefs/namespaces/Spy::Test")
    doc = response.json()
    assert doc["namespace"] == "Spy::Test"
    assert doc["visibility"] == "private"
    assert doc["protected"] is False
    assert doc["owner"] == world.projects["admin"]
    assert doc["schema"] == "/v2/schemas/metadefs/namespace"
    assert doc["self"] == "/v2/metadefs/namespaces/Spy::Test"
    assert "description" not in doc and "objects" not in doc
    assert doc["created_at"].endswith("Z")


def test_create_with_contents_and_show_them_inline(api: Callers) -> None:
    create(
        api,
        visibility="public",
        resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}],
        properties={"cpu_policy": {"title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]}},
        objects=[
            {
                "name": "Watchdog",
                "required": ["watchdog_action"],
                "properties": {"watchdog_action": {"title": "Action", "type": "string"}},
            }
        ],
        tags=[{"name": "fast"}],
    )
    doc = api.alice.get(f"{NS}/Spy::Test").json()
    assert doc["properties"] == {
        "cpu_policy": {"title": "CPU policy", "type": "string", "enum": ["shared", "dedicated"]}
    }
    assert doc["tags"] == [{"name": "fast"}]
    assert [a["name"] for a in doc["resource_type_associations"]] == ["OS::Glance::Image"]
    [obj] = doc["objects"]
    assert obj["name"] == "Watchdog"
    assert obj["self"] == "/v2/metadefs/namespaces/Spy::Test/objects/Watchdog"
    # With ?resource_type= the names carry the association's prefix, as they apply to an image.
    prefixed = api.alice.get(f"{NS}/Spy::Test", params={"resource_type": "OS::Glance::Image"}).json()
    assert list(prefixed["properties"]) == ["hw_cpu_policy"]
    assert prefixed["objects"][0]["required"] == ["hw_watchdog_action"]
    assert list(prefixed["objects"][0]["properties"]) == ["hw_watchdog_action"]


def test_writes_are_admin_only_by_default(api: Callers) -> None:
    response = api.alice.post(NS, json={"namespace": "Mine"})
    assert response.status_code == 403
    assert message(response) == "You are not authorized to complete add_metadef_namespace action."
    create(api, visibility="public")
    assert api.alice.put(f"{NS}/Spy::Test", json={"namespace": "Spy::Test"}).status_code == 403
    assert api.alice.delete(f"{NS}/Spy::Test").status_code == 403
    assert api.alice.post(f"{NS}/Spy::Test/tags/t").status_code == 403


def test_private_namespaces_of_other_projects_are_404(api: Callers, world: Any) -> None:
    create(api, owner=world.projects["alpha"])
    assert api.alice.get(f"{NS}/Spy::Test").status_code == 200
    assert api.rita.get(f"{NS}/Spy::Test").status_code == 200
    for url in (f"{NS}/Spy::Test", f"{NS}/Spy::Test/objects", f"{NS}/Spy::Test/tags"):
        assert api.bob.get(url).status_code == 404
    # A write on a namespace the caller cannot see is 404 too, not 403.
    assert api.bob.delete(f"{NS}/Spy::Test").status_code == 404
    assert api.bob.get(f"{NS}/Nothing::Here").status_code == 404
    hidden, missing = api.bob.get(f"{NS}/Spy::Test"), api.bob.get(f"{NS}/Nothing::Here")
    assert message(hidden).replace("Spy::Test", "X") == message(missing).replace("Nothing::Here", "X")


def test_duplicate_namespace_is_409(api: Callers) -> None:
    create(api)
    response = api.admin.post(NS, json={"namespace": "Spy::Test"})
    assert response.status_code == 409
    assert message(response) == "The metadata definition namespace=Spy::Test already exists."


def test_bad_bodies(api: Callers) -> None:
    assert api.admin.post(NS, json={"display_name": "x"}).status_code == 400
    assert api.admin.post(NS, json={"namespace": "x", "visibility": "shared"}).status_code == 400
    assert api.admin.post(NS, json={"namespace": "x", "bogus": 1}).status_code == 400
    read_only = api.admin.post(NS, json={"namespace": "x", "created_at": "2020-01-01T00:00:00Z"})
    assert read_only.status_code == 403
    assert message(read_only) == "Attribute 'created_at' is read-only."
    # A failed create leaves nothing behind.
    duplicate_objects = {"namespace": "x", "objects": [{"name": "o"}, {"name": "o"}]}
    assert api.admin.post(NS, json=duplicate_objects).status_code == 409
    assert api.admin.get(f"{NS}/x").status_code == 404


def test_update_replaces_and_renames(api: Callers) -> None:
    create(api, description="old", visibility="public", protected=True)
    response = api.admin.put(f"{NS}/Spy::Test", json={"namespace": "Spy::Renamed", "display_name": "R"})
    assert response.status_code == 200
    doc = response.json()
    assert doc["namespace"] == "Spy::Renamed"
    assert "description" not in doc
    assert doc["visibility"] == "private" and doc["protected"] is False
    assert api.admin.get(f"{NS}/Spy::Test").status_code == 404
    api.admin.post(NS, json={"namespace": "Other"})
    clash = api.admin.put(f"{NS}/Other", json={"namespace": "Spy::Renamed"})
    assert clash.status_code == 409


def test_protected_namespace_refuses_delete(api: Callers) -> None:
    create(api, protected=True, objects=[{"name": "o"}], tags=[{"name": "t"}])
    response = api.admin.delete(f"{NS}/Spy::Test")
    assert response.status_code == 403
    assert message(response) == "Metadata definition namespace Spy::Test is protected and cannot be deleted."
    assert api.admin.delete(f"{NS}/Spy::Test/objects/o").status_code == 403
    assert api.admin.delete(f"{NS}/Spy::Test/tags").status_code == 403
    api.admin.put(f"{NS}/Spy::Test", json={"namespace": "Spy::Test", "protected": False})
    assert api.admin.delete(f"{NS}/Spy::Test").status_code == 204
    assert api.admin.get(f"{NS}/Spy::Test").status_code == 404


def test_list_filters_and_visibility(api: Callers, world: Any) -> None:
    create(api, namespace="A", visibility="public", resource_type_associations=[{"name": "OS::Nova::Flavor"}])
    create(api, namespace="B", visibility="private", owner=world.projects["alpha"])
    create(api, namespace="C", visibility="private", owner=world.projects["beta"])

    def names(caller: Any, **params: str) -> list[str]:
        response = caller.get(NS, params=params)
        assert response.status_code == 200, response.text
        return sorted(n["namespace"] for n in response.json()["namespaces"])

    assert names(api.alice) == ["A", "B"]
    assert names(api.bob) == ["A", "C"]
    assert names(api.admin) == ["A", "B", "C"]
    assert names(api.admin, visibility="private") == ["B", "C"]
    assert names(api.alice, resource_types="OS::Nova::Flavor,OS::Cinder::Volume") == ["A"]
    listed = api.alice.get(NS).json()
    assert listed["schema"] == "/v2/schemas/metadefs/namespaces"
    assert listed["first"] == "/v2/metadefs/namespaces"
    a = next(n for n in listed["namespaces"] if n["namespace"] == "A")
    assert [r["name"] for r in a["resource_type_associations"]] == ["OS::Nova::Flavor"]
    assert "objects" not in a


def test_list_pagination(api: Callers) -> None:
    for name in ("N1", "N2", "N3"):
        create(api, namespace=name)
    page = api.admin.get(NS, params={"limit": "2", "sort_key": "namespace", "sort_dir": "asc"}).json()
    assert [n["namespace"] for n in page["namespaces"]] == ["N1", "N2"]
    assert page["next"] == "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc&marker=N2"
    rest = api.admin.get(page["next"]).json()
    assert [n["namespace"] for n in rest["namespaces"]] == ["N3"]
    assert "next" not in rest
    desc = api.admin.get(NS, params={"sort_key": "namespace", "sort_dir": "desc", "marker": "N2"}).json()
    assert [n["namespace"] for n in desc["namespaces"]] == ["N1"]


def test_list_bad_parameters(api: Callers) -> None:
    cases = {
        "sort_dir": ("sideways", "Invalid sort direction: sideways"),
        "visibility": ("shared", "Invalid visibility value: shared"),
        "limit": ("-1", "limit param must be positive"),
    }
    for key, (value, text) in cases.items():
        response = api.admin.get(NS, params={key: value})
        assert response.status_code == 400
        assert message(response) == text
    assert api.admin.get(NS, params={"limit": "x"}).status_code == 400
    assert api.admin.get(NS, params={"marker": "missing"}).status_code == 404


def test_schemas_are_served(api: Callers) -> None:
    for name in ("namespace", "namespaces", "object", "objects", "property", "properties", "tag", "tags"):
        response = api.rita.get(f"/v2/schemas/metadefs/{name}")
        assert response.status_code == 200
        assert response.json()["name"] == name
    assert api.rita.get("/v2/schemas/metadefs/resource_type").json()["name"] == "resource_type_association"
    assert api.rita.get("/v2/schemas/metadefs/nothing").status_code == 404
    namespaces = api.rita.get("/v2/schemas/metadefs/namespaces").json()
    assert namespaces["properties"]["namespaces"]["items"]["required"] == ["namespace"]
    assert "property" in namespaces["definitions"]


def test_names_longer_than_their_columns_are_400(api: Callers) -> None:
    long = "x" * 81
    for body in (
        {"properties": {long: {"title": "T", "type": "string"}}},
        {"objects": [{"name": long}]},
        {"tags": [{"name": long}]},
        {"resource_type_associations": [{"name": long}]},
        {"resource_type_associations": [{"name": "OS::Glance::Image", "prefix": long}]},
    ):
        response = api.admin.post(NS, json={"namespace": "Spy::Long", **body})
        assert response.status_code == 400, body
    assert api.admin.get(f"{NS}/Spy::Long").status_code == 404
    assert api.admin.post(NS, json={"namespace": long}).status_code == 400


def test_schema_shapes_follow_glance(api: Callers) -> None:
    """glance/api/v2/metadef_*.py get_schema(): required attributes, closed objects, definitions."""
    namespace = api.rita.get("/v2/schemas/metadefs/namespace").json()
    assert namespace["additionalProperties"] is False
    assert namespace["properties"]["visibility"]["enum"] == ["public", "private"]
    assert api.rita.get("/v2/schemas/metadefs/property").json()["required"] == ["type", "title", "name"]
    properties = api.rita.get("/v2/schemas/metadefs/properties").json()
    assert properties["properties"]["properties"]["additionalProperties"]["required"] == ["type", "title"]
    assert "definitions" not in api.rita.get("/v2/schemas/metadefs/tag").json()
    associations = api.rita.get("/v2/schemas/metadefs/resource_types").json()
    assert list(associations["properties"]) == ["resource_type_associations", "first", "next", "schema"]


def test_a_bad_body_is_400_before_the_namespace_is_looked_up(api: Callers, world: Any) -> None:
    """Glance's deserializer validates the body before its controller finds the namespace."""
    create(api, owner=world.projects["beta"])
    assert api.alice.post(f"{NS}/Spy::Test/objects", json={"bogus": 1}).status_code == 400
    assert api.alice.post(f"{NS}/Spy::Test/objects", json={"name": "o"}).status_code == 404
    assert api.alice.post(NS, json={"bogus": 1}).status_code == 400
