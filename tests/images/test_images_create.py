"""POST /v2/images: every status-code path."""

from __future__ import annotations

import uuid

import pytest

from tests.api.helpers import create, message
from tests.conftest import Callers, World
from tests.identity.test_admin_api import V3, role_ids, session

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def test_create_answers_201_with_location_and_defaults(api: Callers, world: World) -> None:
    response = api.alice.post("/v2/images", json={"name": "imgR"})
    assert response.status_code == 201, response.text
    image = response.json()
    assert response.headers["location"] == f"http://127.0.0.1:9292/v2/images/{image['id']}"
    assert image["visibility"] == "shared"
    assert image["min_ram"] == 0
    assert image["min_disk"] == 0
    assert image["protected"] is False
    assert image["os_hidden"] is False
    assert image["status"] == "queued"
    assert image["owner"] == world.projects["alpha"]
    for key in ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"):
        assert image[key] is None
    assert image["tags"] == []
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert "stores" not in image


def test_create_renders_fields_in_glance_order(api: Callers) -> None:
    image = create(api.alice, name="imgR")
    assert list(image) == [
        "name",
        "disk_format",
        "container_format",
        "visibility",
        "size",
        "virtual_size",
        "status",
        "checksum",
        "protected",
        "min_ram",
        "min_disk",
        "owner",
        "os_hidden",
        "os_hash_algo",
        "os_hash_value",
        "id",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
    ]


def test_location_under_image_prefix(api: Callers) -> None:
    response = api.alice.post("/image/v2/images", json={"name": "prefixed"})
    assert response.status_code == 201
    assert response.headers["location"].startswith("http://127.0.0.1:9292/image/v2/images/")


def test_create_with_every_writable_attribute(api: Callers) -> None:
    response = api.alice.post(
        "/v2/images",
        json={
            "name": "full",
            "disk_format": "qcow2",
            "container_format": "bare",
            "visibility": "private",
            "protected": True,
            "os_hidden": True,
            "min_ram": 512,
            "min_disk": 2,
            "tags": ["a", "b", "a"],
            "hw_disk_bus": "scsi",
            "os_distro": "debian",
        },
    )
    assert response.status_code == 201, response.text
    image = response.json()
    assert (image["min_ram"], image["min_disk"], image["protected"], image["os_hidden"]) == (
        512,
        2,
        True,
        True,
    )
    assert image["visibility"] == "private"
    assert sorted(image["tags"]) == ["a", "b"]
    assert image["hw_disk_bus"] == "scsi"
    assert image["os_distro"] == "debian"
    # Extra properties are rendered before the core attributes.
    assert list(image)[:2] == ["hw_disk_bus", "os_distro"]


def test_create_with_given_id_and_duplicate_409(api: Callers) -> None:
    image_id = str(uuid.uuid4())
    assert create(api.alice, id=image_id)["id"] == image_id
    again = api.alice.post("/v2/images", json={"id": image_id})
    assert again.status_code == 409
    assert image_id in message(again)
    # Another project cannot learn anything different: the id is taken for everyone.
    assert api.bob.post("/v2/images", json={"id": image_id}).status_code == 409


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "----00000000000000000000000000000000", 12, ""])
def test_create_with_malformed_id_400(api: Callers, bad_id: object) -> None:
    response = api.alice.post("/v2/images", json={"id": bad_id})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "attribute",
    [
        "status",
        "checksum",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "os_hash_value",
        "self",
        "file",
    ],
)
def test_create_read_only_attribute_403(api: Callers, attribute: str) -> None:
    response = api.alice.post("/v2/images", json={"name": "x", attribute: "abc"})
    assert response.status_code == 403
    assert response.json()["message"] == f"Attribute '{attribute}' is read-only.<br /><br />\n\n\n"
    assert response.json()["title"] == "Forbidden"


def test_create_reserved_property_403_as_glance(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={"name": "x", "os_glance_foo": "1"})
    assert response.status_code == 403
    assert response.json() == {
        "message": "Access was denied to this resource.<br /><br />\n"
        "Attribute 'os_glance_foo' is reserved.\n\n",
        "code": "403 Forbidden",
        "title": "Forbidden",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 256},
        {"name": 12},
        {"visibility": "everyone"},
        {"disk_format": "floppy"},
        {"container_format": "zip"},
        {"min_ram": "512"},
        {"min_ram": 1.5},
        {"min_disk": -1},
        {"min_disk": 2**31},
        {"min_ram": 2**62},
        {"protected": "yes"},
        {"os_hidden": 1},
        {"tags": "a"},
        {"tags": [1]},
        {"tags": ["x" * 256]},
        {"hw_disk_bus": 5},
        {"hw_disk_bus": None},
        {"nested": {"a": "b"}},
        {"x" * 256: "too long a property name"},
    ],
)
def test_create_invalid_values_400(api: Callers, body: dict[str, object]) -> None:
    response = api.alice.post("/v2/images", json=body)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[]", b'"name"', b"null", b"12", b'{"min_ram": 1e999}'])
def test_create_body_not_a_json_object_400(api: Callers, raw: bytes) -> None:
    response = api.alice.post("/v2/images", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text


def test_create_huge_integer_400(api: Callers) -> None:
    raw = b'{"min_ram": 1' + b"0" * 40 + b"}"
    response = api.alice.post("/v2/images", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_create_unicode_name(api: Callers) -> None:
    name = "образ 🐧 \u00e9\u0301"
    image = create(api.alice, name=name)
    assert api.alice.get(f"/v2/images/{image['id']}").json()["name"] == name
    listed = api.alice.get("/v2/images", params={"name": name}).json()["images"]
    assert [i["id"] for i in listed] == [image["id"]]


def test_create_for_another_owner_needs_admin(api: Callers, world: World) -> None:
    beta = world.projects["beta"]
    response = api.alice.post("/v2/images", json={"owner": beta})
    assert response.status_code == 403
    assert message(response) == f"You are not permitted to create images owned by '{beta}'."
    by_admin = api.admin.post("/v2/images", json={"owner": beta})
    assert by_admin.status_code == 201
    assert by_admin.json()["owner"] == beta
    # Naming one's own project is fine.
    assert api.alice.post("/v2/images", json={"owner": world.projects["alpha"]}).status_code == 201


def test_create_public_needs_admin(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={"visibility": "public"})
    assert response.status_code == 403
    assert message(response) == "You are not authorized to complete publicize_image action."
    assert api.admin.post("/v2/images", json={"visibility": "public"}).status_code == 201


def test_create_community_by_member(api: Callers) -> None:
    assert create(api.alice, visibility="community")["visibility"] == "community"


def test_create_by_reader_403(api: Callers) -> None:
    response = api.rita.post("/v2/images", json={"name": "x"})
    assert response.status_code == 403
    assert message(response) == "You are not authorized to complete add_image action."


def test_create_without_token_401(api: Callers) -> None:
    response = api.anonymous.post("/v2/images", json={"name": "x"})
    assert response.status_code == 401
    assert "x-openstack-request-id" in response.headers


def test_create_too_many_tags_413(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={"tags": [f"t{i}" for i in range(129)]})
    assert response.status_code == 413


def test_create_too_many_properties_413(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={f"p{i}": "v" for i in range(129)})
    assert response.status_code == 413


def test_create_unsupported_locations_403(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={"locations": []})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body", [{"name": "a\x00b"}, {"prop": "\x00"}, {"pr\x00op": "x"}, {"tags": ["t\x00"]}, {"owner": "\x00"}]
)
def test_nul_characters_400(api: Callers, body: dict[str, object]) -> None:
    # PostgreSQL cannot store NUL in text: refuse it on every database alike.
    response = api.alice.post("/v2/images", json=body)
    assert response.status_code == 400


def test_domain_scoped_tokens_cannot_create_ownerless_images(api: Callers, world: World) -> None:
    member = role_ids(api)["member"]
    granted = api.admin.put(f"{V3}/domains/default/users/{world.users['alice']}/roles/{member}")
    assert granted.status_code == 204
    domain_alice = session(api.alice.client, "alice", domain={"id": "default"})
    created = domain_alice.post("/v2/images", json={"name": "x"})
    assert created.status_code in (401, 403), created.text
