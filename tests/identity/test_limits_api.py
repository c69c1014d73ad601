"""Keystone's unified-limits API of the embedded identity: /v3/registered_limits, /v3/limits,
/v3/limits/model, and the read-only services and regions they name (spyglass.identity.limits)."""

from __future__ import annotations

from typing import Any

from spyglass.identity.services import IDENTITY, IMAGE
from tests.conftest import Caller, Callers, World

V3 = "/identity/v3"


def register(admin: Caller, resource: str = "image_count_total", default: int = 10, **more: Any) -> Any:
    body = {
        "registered_limits": [
            {"service_id": IMAGE.id, "resource_name": resource, "default_limit": default, **more}
        ]
    }
    return admin.post(f"{V3}/registered_limits", json=body)


def limit(
    admin: Caller, project_id: str, resource: str = "image_count_total", value: int = 5, **more: Any
) -> Any:
    entry = {
        "service_id": IMAGE.id,
        "project_id": project_id,
        "resource_name": resource,
        "resource_limit": value,
    }
    return admin.post(f"{V3}/limits", json={"limits": [{**entry, **more}]})


def error(response: Any) -> str:
    message: str = response.json()["error"]["message"]
    return message


def test_services_and_regions_are_keystones_with_fixed_ids(api: Callers) -> None:
    listed = api.admin.get(f"{V3}/services").json()["services"]
    assert {(s["type"], s["name"], s["id"]) for s in listed} == {
        ("identity", "keystone", IDENTITY.id),
        ("image", "glance", IMAGE.id),
    }
    # The catalog in a token names the same ids: limits refer to the service a client resolves there.
    catalog = api.admin.get(f"{V3}/auth/catalog").json()["catalog"]
    assert {s["id"] for s in catalog} == {IDENTITY.id, IMAGE.id}
    assert api.admin.get(f"{V3}/services", params={"type": "image"}).json()["services"][0]["id"] == IMAGE.id
    assert api.admin.get(f"{V3}/services", params={"name": "image"}).json()["services"] == []
    assert api.admin.get(f"{V3}/services/{IMAGE.id}").json()["service"]["type"] == "image"
    assert api.admin.get(f"{V3}/services/image").status_code == 404
    assert api.alice.get(f"{V3}/services").status_code == 403
    regions = api.alice.get(f"{V3}/regions").json()["regions"]
    assert [r["id"] for r in regions] == ["RegionOne"]
    assert api.alice.get(f"{V3}/regions/RegionOne").json()["region"]["parent_region_id"] is None
    assert api.alice.get(f"{V3}/regions/Elsewhere").status_code == 404


def test_registered_limit_create_show_update_delete(api: Callers) -> None:
    response = register(api.admin, description="images per project")
    assert response.status_code == 201, response.text
    [created] = response.json()["registered_limits"]
    assert created["service_id"] == IMAGE.id
    assert created["region_id"] is None
    assert created["resource_name"] == "image_count_total"
    assert created["default_limit"] == 10
    assert created["description"] == "images per project"
    assert created["links"]["self"].endswith(f"/v3/registered_limits/{created['id']}")
    shown = api.alice.get(f"{V3}/registered_limits/{created['id']}").json()["registered_limit"]
    assert shown == created
    listed = api.alice.get(f"{V3}/registered_limits", params={"resource_name": "image_count_total"}).json()
    assert [r["id"] for r in listed["registered_limits"]] == [created["id"]]
    assert (
        api.alice.get(f"{V3}/registered_limits", params={"resource_name": "x"}).json()["registered_limits"]
        == []
    )
    changed = api.admin.patch_json(
        f"{V3}/registered_limits/{created['id']}", {"registered_limit": {"default_limit": 20}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["registered_limit"]["default_limit"] == 20
    assert api.admin.delete(f"{V3}/registered_limits/{created['id']}").status_code == 204
    gone = api.admin.get(f"{V3}/registered_limits/{created['id']}")
    assert gone.status_code == 404
    assert error(gone) == f"Could not find registered limit for {created['id']}."


def test_registered_limit_errors_are_keystones(api: Callers) -> None:
    assert register(api.admin).status_code == 201
    duplicate = register(api.admin)
    assert duplicate.status_code == 409
    assert error(duplicate) == "Conflict occurred attempting to store registered_limit - Duplicate entry."
    # The same resource in a region is another registered limit.
    assert register(api.admin, region_id="RegionOne").status_code == 201
    unknown_service = api.admin.post(
        f"{V3}/registered_limits",
        json={"registered_limits": [{"service_id": "nope", "resource_name": "r", "default_limit": 1}]},
    )
    assert unknown_service.status_code == 400
    assert error(unknown_service).startswith("Expecting to find service_id in registered_limits.")
    assert register(api.admin, "other", region_id="Elsewhere").status_code == 400
    bad = register(api.admin, "negative", default=-2)
    assert bad.status_code == 400
    assert error(bad).startswith("Invalid input for field 'registered_limits/0/default_limit'")
    assert api.admin.post(f"{V3}/registered_limits", json={"registered_limits": []}).status_code == 400
    assert register(api.alice, "mine").status_code == 403


def test_limit_create_show_update_delete(api: Callers, world: World) -> None:
    [registered] = register(api.admin).json()["registered_limits"]
    alpha = world.projects["alpha"]
    response = limit(api.admin, alpha, value=3, description="alpha's")
    assert response.status_code == 201, response.text
    [created] = response.json()["limits"]
    assert created["project_id"] == alpha
    assert created["domain_id"] is None
    assert created["service_id"] == IMAGE.id
    assert created["region_id"] is None
    assert created["resource_name"] == "image_count_total"
    assert created["resource_limit"] == 3
    assert created["links"]["self"].endswith(f"/v3/limits/{created['id']}")
    # A project reads its own limits only.
    assert [x["id"] for x in api.alice.get(f"{V3}/limits").json()["limits"]] == [created["id"]]
    assert api.bob.get(f"{V3}/limits").json()["limits"] == []
    assert api.alice.get(f"{V3}/limits/{created['id']}").status_code == 200
    assert api.bob.get(f"{V3}/limits/{created['id']}").status_code == 403
    changed = api.admin.patch_json(f"{V3}/limits/{created['id']}", {"limit": {"resource_limit": 7}})
    assert changed.json()["limit"]["resource_limit"] == 7
    # The registered limit cannot be deleted, nor renamed, while a limit refers to it.
    refused = api.admin.delete(f"{V3}/registered_limits/{registered['id']}")
    assert refused.status_code == 403
    assert "because there are project limits associated with it" in error(refused)
    renamed = api.admin.patch_json(
        f"{V3}/registered_limits/{registered['id']}", {"registered_limit": {"resource_name": "other"}}
    )
    assert renamed.status_code == 403
    assert api.admin.delete(f"{V3}/limits/{created['id']}").status_code == 204
    assert api.admin.get(f"{V3}/limits/{created['id']}").status_code == 404
    assert api.admin.delete(f"{V3}/registered_limits/{registered['id']}").status_code == 204


def test_limit_errors_are_keystones(api: Callers, world: World) -> None:
    alpha = world.projects["alpha"]
    unregistered = limit(api.admin, alpha)
    assert unregistered.status_code == 403
    assert error(unregistered) == "Unable to create a limit that has no corresponding registered limit."
    register(api.admin)
    assert limit(api.admin, alpha).status_code == 201
    duplicate = limit(api.admin, alpha)
    assert duplicate.status_code == 409
    assert error(duplicate) == "Conflict occurred attempting to store limit - Duplicate entry."
    missing = limit(api.admin, "no-such-project")
    assert missing.status_code == 400
    assert error(missing).startswith("Expecting to find project_id in limits.")
    assert limit(api.alice, world.projects["beta"]).status_code == 403
    both = limit(api.admin, alpha, domain_id="default")
    assert both.status_code == 400


def test_the_model_is_flat(api: Callers) -> None:
    body = api.alice.get(f"{V3}/limits/model").json()
    assert body["model"]["name"] == "flat"
    assert body["links"]["self"].endswith("/v3/limits/model")


def test_deleting_a_project_deletes_its_limits(api: Callers, world: World) -> None:
    register(api.admin)
    alpha = world.projects["alpha"]
    [created] = limit(api.admin, alpha).json()["limits"]
    assert api.admin.patch_json(f"{V3}/projects/{alpha}", {"project": {"enabled": False}}).status_code == 200
    assert api.admin.delete(f"{V3}/projects/{alpha}").status_code == 204
    assert api.admin.get(f"{V3}/limits/{created['id']}").status_code == 404
