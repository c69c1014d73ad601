"""PATCH /v2/images/{id}: both media types, every operation, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import active, create, message
from tests.conftest import Caller, Callers, World

V20 = "application/openstack-images-v2.0-json-patch"
V21 = "application/openstack-images-v2.1-json-patch"
UNKNOWN = "00000000-0000-0000-0000-000000000000"


def patch_ok(caller: Caller, image_id: str, ops: list[dict[str, Any]], media: str = V21) -> dict[str, Any]:
    response = caller.patch(f"/v2/images/{image_id}", ops, media)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_patch_as_recorded(api: Callers) -> None:
    image = create(api.alice, name="imgR", os_distro="debian")
    ops = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
        {"op": "remove", "path": "/os_distro"},
    ]
    body = patch_ok(api.alice, image["id"], ops)
    assert list(body)[:3] == ["hw_disk_bus", "name", "disk_format"]
    assert body["name"] == "renamed"
    assert "os_distro" not in body
    assert {k: v for k, v in body.items() if k not in ("name", "hw_disk_bus", "os_distro", "updated_at")} == {
        k: v for k, v in image.items() if k not in ("name", "hw_disk_bus", "os_distro", "updated_at")
    }
    assert api.alice.get(f"/v2/images/{image['id']}").json() == body


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/name", "value": "v20"}],
        [{"replace": "/name", "value": "v20"}],
    ],
)
def test_patch_v20_media_type_and_old_op_form(api: Callers, ops: list[dict[str, Any]]) -> None:
    image = create(api.alice)
    assert patch_ok(api.alice, image["id"], ops, V20)["name"] == "v20"


@pytest.mark.parametrize("path", ["/name", "/tags", "/color"])
def test_v20_add_of_a_present_attribute_409(api: Callers, path: str) -> None:
    image = create(api.alice, color="red")
    response = api.alice.patch(f"/v2/images/{image['id']}", [{"add": path, "value": "x"}], V20)
    assert response.status_code == 409
    assert response.json()["message"] == (
        "There was a conflict when trying to complete your request.<br /><br />\n"
        f"Property {path[1:]} already present.\n\n"
    )
    assert patch_ok(api.alice, image["id"], [{"add": "/shape", "value": "round"}], V20)["shape"] == "round"


def test_v21_add_of_a_present_attribute_replaces(api: Callers) -> None:
    image = create(api.alice, color="red")
    body = patch_ok(
        api.alice,
        image["id"],
        [{"op": "add", "path": "/color", "value": "blue"}, {"op": "add", "path": "/name", "value": "n"}],
    )
    assert (body["color"], body["name"]) == ("blue", "n")


def test_patch_v20_old_form_remove(api: Callers) -> None:
    image = create(api.alice, os_distro="debian")
    assert "os_distro" not in patch_ok(api.alice, image["id"], [{"remove": "/os_distro"}], V20)


@pytest.mark.parametrize(
    "ops",
    [
        [{"replace": "/name", "add": "/name", "value": "x"}],
        [{"value": "x"}],
        [{"replace": "/name", "value": "x"}],  # old form needs the v2.0 media type
    ],
)
def test_patch_old_form_mistakes_400(api: Callers, ops: list[dict[str, Any]]) -> None:
    image = create(api.alice)
    media = V21 if ops == [{"replace": "/name", "value": "x"}] else V20
    assert api.alice.patch(f"/v2/images/{image['id']}", ops, media).status_code == 400


def test_add_replace_remove_core_and_extra(api: Callers) -> None:
    image = create(api.alice, color="red")
    body = patch_ok(
        api.alice,
        image["id"],
        [
            {"op": "add", "path": "/min_ram", "value": 1024},
            {"op": "replace", "path": "/min_disk", "value": 10},
            {"op": "replace", "path": "/disk_format", "value": "qcow2"},
            {"op": "replace", "path": "/container_format", "value": "ovf"},
            {"op": "replace", "path": "/os_hidden", "value": True},
            {"op": "replace", "path": "/color", "value": "blue"},
            {"op": "add", "path": "/shape", "value": "round"},
            {"op": "add", "path": "/a~1b", "value": "slash"},
        ],
    )
    assert (body["min_ram"], body["min_disk"], body["disk_format"], body["container_format"]) == (
        1024,
        10,
        "qcow2",
        "ovf",
    )
    assert body["os_hidden"] is True
    assert (body["color"], body["shape"], body["a/b"]) == ("blue", "round", "slash")
    body = patch_ok(
        api.alice, image["id"], [{"op": "remove", "path": "/color"}, {"op": "remove", "path": "/a~1b"}]
    )
    assert "color" not in body
    assert "a/b" not in body


def test_name_may_be_set_to_null(api: Callers) -> None:
    image = create(api.alice, name="x")
    assert (
        patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/name", "value": None}])["name"] is None
    )


def test_patch_changes_updated_at_only_when_something_changes(api: Callers, db: Any) -> None:
    from datetime import datetime

    from sqlalchemy import update

    from spyglass.db.tables import images

    image = create(api.alice, name="x")
    with db.write() as conn:
        conn.execute(update(images).where(images.c.id == image["id"]).values(updated_at=datetime(2030, 1, 1)))
    same = patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/name", "value": "x"}])
    assert same["updated_at"] == "2030-01-01T00:00:00Z"
    assert patch_ok(api.alice, image["id"], [])["updated_at"] == "2030-01-01T00:00:00Z"
    changed = patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/name", "value": "y"}])
    assert changed["updated_at"] != "2030-01-01T00:00:00Z"


@pytest.mark.parametrize("op", ["replace", "remove"])
def test_replace_or_remove_missing_extra_property_409(api: Callers, op: str) -> None:
    image = create(api.alice)
    change: dict[str, Any] = {"op": op, "path": "/nothing_here"}
    if op == "replace":
        change["value"] = "x"
    response = api.alice.patch(f"/v2/images/{image['id']}", [change])
    assert response.status_code == 409
    # Nothing was applied.
    assert "nothing_here" not in api.alice.get(f"/v2/images/{image['id']}").json()


def test_failed_patch_applies_nothing(api: Callers) -> None:
    image = create(api.alice, name="before")
    ops = [{"op": "replace", "path": "/name", "value": "after"}, {"op": "remove", "path": "/missing"}]
    assert api.alice.patch(f"/v2/images/{image['id']}", ops).status_code == 409
    assert api.alice.get(f"/v2/images/{image['id']}").json()["name"] == "before"


def test_tags_replace(api: Callers) -> None:
    image = create(api.alice, tags=["old"])
    body = patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/tags", "value": ["b", "a", "b"]}])
    assert sorted(body["tags"]) == ["a", "b"]
    body = patch_ok(api.alice, image["id"], [{"op": "add", "path": "/tags", "value": ["c"]}])
    assert body["tags"] == ["c"]
    body = patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/tags", "value": []}])
    assert body["tags"] == []


@pytest.mark.parametrize("path", ["/tags/-", "/tags/0", "/name/first"])
def test_paths_below_an_attribute_400_as_glance(api: Callers, path: str) -> None:
    image = create(api.alice, tags=["a"])
    response = api.alice.patch(f"/v2/images/{image['id']}", [{"op": "add", "path": path, "value": "x"}])
    assert response.status_code == 400
    assert message(response) == f"Invalid JSON pointer for this resource: '{path}'"


@pytest.mark.parametrize(
    "value", ["notalist", [1], ["x" * 256], [f"t{i}" for i in range(129)]], ids=["str", "int", "long", "many"]
)
def test_bad_tags_refused(api: Callers, value: Any) -> None:
    image = create(api.alice)
    response = api.alice.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": "/tags", "value": value}]
    )
    assert response.status_code in (400, 413)


def test_wrong_media_type_415_as_glance(api: Callers) -> None:
    image = create(api.alice)
    response = api.alice.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": "/name", "value": "x"}], "application/json"
    )
    assert response.status_code == 415
    assert response.headers["accept-patch"] == f"{V20}, {V21}"
    assert response.json() == {
        "message": "The request media type application/json is not supported by this server.\n<br /><br />\n"
        f"Image PATCH expects Content-Type one of: {V20}, {V21}",
        "code": "415 Unsupported Media Type",
        "title": "Unsupported Media Type",
    }


@pytest.mark.parametrize("media", ["", "text/plain", "application/json-patch+json", "x" * 2000])
def test_other_media_types_415(api: Callers, media: str) -> None:
    image = create(api.alice)
    response = api.alice.patch(f"/v2/images/{image['id']}", [], media)
    assert response.status_code == 415
    assert "accept-patch" in response.headers


def test_media_type_parameters_are_ignored(api: Callers) -> None:
    image = create(api.alice)
    ops = [{"op": "replace", "path": "/name", "value": "p"}]
    assert patch_ok(api.alice, image["id"], ops, f"{V21}; charset=UTF-8")["name"] == "p"


@pytest.mark.parametrize(
    "attribute", ["status", "checksum", "size", "virtual_size", "id", "created_at", "os_hash_algo", "self"]
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_403(api: Callers, attribute: str, op: str) -> None:
    image = create(api.alice)
    change: dict[str, Any] = {"op": op, "path": f"/{attribute}"}
    if op != "remove":
        change["value"] = "active"
    response = api.alice.patch(f"/v2/images/{image['id']}", [change])
    assert response.status_code == 403
    assert response.json()["message"] == f"Attribute '{attribute}' is read-only.<br /><br />\n\n\n"


def test_reserved_403(api: Callers) -> None:
    image = create(api.alice)
    response = api.alice.patch(
        f"/v2/images/{image['id']}", [{"op": "add", "path": "/os_glance_x", "value": "1"}]
    )
    assert response.status_code == 403
    assert "Attribute 'os_glance_x' is reserved." in response.json()["message"]


@pytest.mark.parametrize("attribute", ["name", "visibility", "min_ram", "protected", "disk_format"])
def test_removing_a_core_attribute_403(api: Callers, attribute: str) -> None:
    image = create(api.alice)
    assert (
        api.alice.patch(f"/v2/images/{image['id']}", [{"op": "remove", "path": f"/{attribute}"}]).status_code
        == 403
    )


def test_patch_by_member_403_as_glance(api: Callers, world: World) -> None:
    image = create(api.alice)
    api.alice.post(f"/v2/images/{image['id']}/members", json={"member": world.projects["beta"]})
    response = api.bob.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": "/name", "value": "hacked"}]
    )
    assert response.status_code == 403
    assert message(response) == "You are not authorized to complete modify_image action."


def test_patch_of_public_image_by_other_project_403(api: Callers) -> None:
    image = create(api.admin, visibility="public")
    response = api.bob.patch(f"/v2/images/{image['id']}", [{"op": "replace", "path": "/name", "value": "x"}])
    assert response.status_code == 403


def test_patch_by_non_member_and_of_unknown_image_404(api: Callers) -> None:
    image = create(api.alice)
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert api.bob.patch(f"/v2/images/{image['id']}", ops).status_code == 404
    assert api.alice.patch(f"/v2/images/{UNKNOWN}", ops).status_code == 404
    assert api.alice.patch("/v2/images/not-an-id", ops).status_code == 404


def test_patch_by_reader_403_and_by_admin_200(api: Callers) -> None:
    image = create(api.alice)
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert api.rita.patch(f"/v2/images/{image['id']}", ops).status_code == 403
    assert api.admin.patch(f"/v2/images/{image['id']}", ops).status_code == 200


@pytest.mark.parametrize("attribute", ["disk_format", "container_format"])
def test_format_change_after_upload_403(api: Callers, attribute: str) -> None:
    image = active(api.alice)
    value = "qcow2" if attribute == "disk_format" else "ovf"
    response = api.alice.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": f"/{attribute}", "value": value}]
    )
    assert response.status_code == 403
    # Setting the same value is not a change.
    same = api.alice.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": f"/{attribute}", "value": image[attribute]}]
    )
    assert same.status_code == 200


def test_protected_toggle(api: Callers) -> None:
    image = create(api.alice)
    assert patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/protected", "value": True}])[
        "protected"
    ]
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 403
    body = patch_ok(api.alice, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert body["protected"] is False
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204


def test_visibility_changes(api: Callers) -> None:
    image = create(api.alice)
    for visibility in ("private", "community", "shared"):
        body = patch_ok(
            api.alice, image["id"], [{"op": "replace", "path": "/visibility", "value": visibility}]
        )
        assert body["visibility"] == visibility
    public = api.alice.patch(
        f"/v2/images/{image['id']}", [{"op": "replace", "path": "/visibility", "value": "public"}]
    )
    assert public.status_code == 403
    assert message(public) == "You are not authorized to complete publicize_image action."
    assert patch_ok(api.admin, image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}])


def test_owner_change_needs_admin(api: Callers, world: World) -> None:
    image = create(api.alice)
    ops = [{"op": "replace", "path": "/owner", "value": world.projects["beta"]}]
    assert api.alice.patch(f"/v2/images/{image['id']}", ops).status_code == 403
    assert patch_ok(api.admin, image["id"], ops)["owner"] == world.projects["beta"]


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "replace", "path": "/name", "value": "x"},
        [["replace", "/name"]],
        [{"op": "test", "path": "/name", "value": "x"}],
        [{"op": "move", "from": "/name", "path": "/other"}],
        [{"path": "/name", "value": "x"}],
        [{"op": "replace", "value": "x"}],
        [{"op": "replace", "path": "name", "value": "x"}],
        [{"op": "replace", "path": "/", "value": "x"}],
        [{"op": "replace", "path": 5, "value": "x"}],
        [{"op": "replace", "path": "/name"}],
        [{"op": "replace", "path": "/name/first", "value": "x"}],
        [{"op": "add", "path": "/tags/x", "value": "x"}],
        [{"op": "add", "path": "/tags/", "value": "x"}],
        [{"op": "replace", "path": "/name", "value": "x" * 256}],
        [{"op": "replace", "path": "/min_ram", "value": -1}],
        [{"op": "replace", "path": "/min_disk", "value": "1"}],
        [{"op": "replace", "path": "/visibility", "value": "everyone"}],
        [{"op": "replace", "path": "/protected", "value": "true"}],
        [{"op": "add", "path": "/extra", "value": 5}],
        [{"op": "add", "path": "/extra", "value": None}],
        [{"op": "add", "path": "/" + "x" * 256, "value": "long name"}],
        [{"op": "replace", "path": "/disk_format", "value": "floppy"}],
    ],
)
def test_bad_operations_400(api: Callers, ops: Any) -> None:
    image = create(api.alice)
    response = api.alice.patch(f"/v2/images/{image['id']}", ops)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("raw", [b"", b"[{]", b"null", b'{"op": "add"}'])
def test_patch_body_not_json_array_400(api: Callers, raw: bytes) -> None:
    image = create(api.alice)
    response = api.alice.request(
        "PATCH", f"/v2/images/{image['id']}", content=raw, headers={"Content-Type": V21}
    )
    assert response.status_code == 400


def test_conflict_and_refusal_messages_as_glance(api: Callers, world: World) -> None:
    image = create(api.alice)
    url = f"/v2/images/{image['id']}"
    missing = api.alice.patch(url, [{"op": "remove", "path": "/missing"}])
    assert missing.json()["message"] == (
        "There was a conflict when trying to complete your request.<br /><br />\n"
        "Property missing does not exist.\n\n"
    )
    core = api.alice.patch(url, [{"op": "remove", "path": "/tags"}])
    assert core.status_code == 403
    assert core.json()["message"] == (
        "Access was denied to this resource.<br /><br />\nProperty tags may not be removed.\n\n"
    )
    reserved = api.alice.patch(url, [{"op": "add", "path": "/os_glance_x", "value": "1"}])
    assert reserved.json()["message"] == "Attribute 'os_glance_x' is reserved.<br /><br />\n\n\n"
    owner = api.alice.patch(url, [{"op": "replace", "path": "/owner", "value": world.projects["beta"]}])
    assert owner.status_code == 403
    assert owner.json()["message"] == (
        "Access was denied to this resource.<br /><br />\nOwner can't be updated by non admin.\n\n"
    )
    value = api.alice.patch(url, [{"op": "add", "path": "/x"}])
    assert message(value) == 'Operation "add" requires a member named "value".'
    unknown = api.alice.patch(url, [{"op": "test", "path": "/x", "value": "1"}])
    assert (
        message(unknown)
        == "Invalid operation: `test`. It must be one of the following: add, remove, replace."
    )


@pytest.mark.parametrize("name", ["location", "deleted", "deleted_at", "locations"])
def test_other_reserved_attributes_403(api: Callers, name: str) -> None:
    image = create(api.alice)
    response = api.alice.patch(f"/v2/images/{image['id']}", [{"op": "add", "path": f"/{name}", "value": "x"}])
    assert response.status_code == 403
    assert api.alice.post("/v2/images", json={name: "x"}).status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        {"op": "replace", "path": "/name", "value": "a\x00"},
        {"op": "add", "path": "/p\x00", "value": "x"},
        {"op": "add", "path": "/p", "value": "\x00"},
        {"op": "add", "path": "/tags/-", "value": "\x00"},
    ],
)
def test_nul_characters_400(api: Callers, change: dict[str, Any]) -> None:
    image = create(api.alice)
    assert api.alice.patch(f"/v2/images/{image['id']}", [change]).status_code == 400
