"""Glance's four image quotas under Keystone's unified limits (spyglass.images.quotas): each resource
just below, at and just above its limit, the 413 Glance answers, GET /v2/info/usage, copies counted
for the copier, the enforcement switch, and what no limit means."""

from __future__ import annotations

from typing import Any

from spyglass.identity.services import IMAGE
from tests.api.helpers import OCTET, create, message, upload
from tests.conftest import Caller, Callers, World, reconfigure

V3 = "/identity/v3"
MIB = 1024 * 1024


def register(api: Callers, resource: str, default: int, region: str | None = None) -> str:
    entry: dict[str, Any] = {"service_id": IMAGE.id, "resource_name": resource, "default_limit": default}
    if region is not None:
        entry["region_id"] = region
    response = api.admin.post(f"{V3}/registered_limits", json={"registered_limits": [entry]})
    assert response.status_code == 201, response.text
    found: str = response.json()["registered_limits"][0]["id"]
    return found


def set_limit(api: Callers, project_id: str, resource: str, value: int) -> str:
    entry = {
        "service_id": IMAGE.id,
        "project_id": project_id,
        "resource_name": resource,
        "resource_limit": value,
    }
    response = api.admin.post(f"{V3}/limits", json={"limits": [entry]})
    assert response.status_code == 201, response.text
    found: str = response.json()["limits"][0]["id"]
    return found


def usage(caller: Caller) -> dict[str, Any]:
    body: dict[str, Any] = caller.get("/v2/info/usage").json()["usage"]
    return body


def put(caller: Caller, image_id: str, data: bytes, where: str = "file") -> Any:
    return caller.put(f"/v2/images/{image_id}/{where}", content=data, headers=OCTET)


def chunked(data: bytes, size: int = 256 * 1024) -> Any:
    """A body of unknown length (no Content-Length), as a streaming client sends it."""

    def parts() -> Any:
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return parts()


def assert_over(response: Any, project_id: str, resource: str, limit: int, used: int, delta: int) -> None:
    assert response.status_code == 413, response.text
    assert message(response) == (
        f"Project {project_id} is over a limit for [Resource {resource} is over limit of {limit} "
        f"due to current usage {used} and delta {delta}]"
    )


# ---- image_count_total -------------------------------------------------------------------------


def test_image_count_total_below_at_and_above(api: Callers, world: World) -> None:
    register(api, "image_count_total", 2)
    create(api.alice)  # below: 0 + 1 <= 2
    create(api.alice)  # at: 1 + 1 == 2
    refused = api.alice.post("/v2/images", json={"name": "third"})
    assert_over(refused, world.projects["alpha"], "image_count_total", 2, 2, 1)
    assert len(api.alice.get("/v2/images").json()["images"]) == 2
    # Each project has its own count; deleting an image frees one.
    create(api.bob)
    first = api.alice.get("/v2/images").json()["images"][0]["id"]
    assert api.alice.delete(f"/v2/images/{first}").status_code == 204
    create(api.alice)


def test_a_project_limit_overrides_the_default_at_once(api: Callers, world: World) -> None:
    register(api, "image_count_total", 1)
    create(api.alice)
    assert api.alice.post("/v2/images", json={}).status_code == 413
    limit_id = set_limit(api, world.projects["alpha"], "image_count_total", 3)
    create(api.alice)
    create(api.alice)
    assert api.alice.post("/v2/images", json={}).status_code == 413
    # -1 is unlimited, as in Keystone.
    api.admin.patch_json(f"{V3}/limits/{limit_id}", {"limit": {"resource_limit": -1}})
    create(api.alice)
    assert api.bob.post("/v2/images", json={}).status_code == 201
    assert api.bob.post("/v2/images", json={}).status_code == 413


def test_a_limit_of_another_region_does_not_apply(api: Callers) -> None:

    register(api, "image_count_total", 0, region="RegionOne")
    assert api.alice.post("/v2/images", json={}).status_code == 413
    reconfigure(api.alice.client, region="RegionTwo")
    assert api.alice.post("/v2/images", json={}).status_code == 201


def test_no_limit_registered_is_unlimited(api: Callers) -> None:
    register(api, "image_size_total", 1)
    for _ in range(5):
        create(api.alice)
    assert usage(api.alice)["image_count_total"] == {"limit": -1, "usage": 5}


def test_enforcement_can_be_turned_off(api: Callers) -> None:
    register(api, "image_count_total", 0)
    assert api.alice.post("/v2/images", json={}).status_code == 413
    reconfigure(api.alice.client, quota_enforcement=False)
    assert api.alice.post("/v2/images", json={}).status_code == 201
    # As Glance without use_keystone_limits: no usage to show.
    assert usage(api.alice) == {}


# ---- image_size_total --------------------------------------------------------------------------


def test_image_size_total_below_at_and_above(api: Callers, world: World) -> None:
    register(api, "image_size_total", 2)
    alpha = world.projects["alpha"]
    first = create(api.alice)
    assert put(api.alice, first["id"], b"x" * (MIB - 1)).status_code == 204  # below
    second = create(api.alice)
    assert put(api.alice, second["id"], b"y" * (MIB + 1)).status_code == 204  # at: exactly 2 MiB
    third = create(api.alice)
    refused = put(api.alice, third["id"], b"z")  # above, by one byte
    assert_over(refused, alpha, "image_size_total", 2, 2, 1)
    shown = api.alice.get(f"/v2/images/{third['id']}").json()
    assert shown["status"] == "queued"
    assert shown["size"] is None
    assert usage(api.alice)["image_size_total"] == {"limit": 2, "usage": 2}


def test_an_upload_of_unknown_length_is_refused_where_it_crosses(api: Callers, world: World) -> None:
    register(api, "image_size_total", 1)
    at_limit = create(api.alice)
    assert put(api.alice, at_limit["id"], chunked(b"a" * MIB)).status_code == 204
    assert api.alice.delete(f"/v2/images/{at_limit['id']}").status_code == 204
    image = create(api.alice)
    before = sorted(p.name for p in api_blob_dir(api).iterdir())
    refused = put(api.alice, image["id"], chunked(b"b" * (MIB + 1)))
    assert refused.status_code == 413, refused.text
    assert "Resource image_size_total is over limit of 1" in message(refused)
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    # Nothing left behind: no blob, no reservation.
    assert sorted(p.name for p in api_blob_dir(api).iterdir()) == before
    assert usage(api.alice)["image_size_total"]["usage"] == 0
    assert put(api.alice, image["id"], chunked(b"c" * MIB)).status_code == 204


def api_blob_dir(api: Callers) -> Any:
    settings = api.alice.client.app.state.spyglass.settings  # type: ignore[attr-defined]
    settings.blob_dir.mkdir(parents=True, exist_ok=True)
    return settings.blob_dir


def test_a_lowered_limit_is_checked_again_when_the_size_is_known(api: Callers, world: World) -> None:
    register(api, "image_size_total", 10)
    limit_id = set_limit(api, world.projects["alpha"], "image_size_total", 10)
    image = create(api.alice)
    api.admin.patch_json(f"{V3}/limits/{limit_id}", {"limit": {"resource_limit": 0}})
    refused = put(api.alice, image["id"], b"d" * 10)
    assert refused.status_code == 413
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_a_copy_counts_its_logical_size_for_the_copier(api: Callers, world: World) -> None:
    source = create(api.bob, visibility="community")
    upload(api.bob, source["id"], b"s" * (2 * MIB))
    register(api, "image_size_total", 3)
    copied = api.alice.post(f"/v2/images/{source['id']}/actions/copy", json={})
    assert copied.status_code == 201, copied.text
    assert usage(api.alice)["image_size_total"] == {"limit": 3, "usage": 2}
    # The blob is shared, but a second copy would be 4 MiB of the copier's data.
    refused = api.alice.post(f"/v2/images/{source['id']}/actions/copy", json={})
    assert_over(refused, world.projects["alpha"], "image_size_total", 3, 2, 2)


def test_a_copy_counts_as_an_image(api: Callers) -> None:
    source = create(api.bob, visibility="community")
    upload(api.bob, source["id"], b"s")
    register(api, "image_count_total", 1)
    assert api.alice.post(f"/v2/images/{source['id']}/actions/copy", json={}).status_code == 201
    assert api.alice.post(f"/v2/images/{source['id']}/actions/copy", json={}).status_code == 413


# ---- image_stage_total and image_count_uploading -----------------------------------------------


def test_image_stage_total_below_at_and_above(api: Callers, world: World) -> None:
    register(api, "image_stage_total", 1)
    first = create(api.alice)
    assert put(api.alice, first["id"], b"s" * (MIB // 2 - 1), "stage").status_code == 204  # below
    second = create(api.alice)
    assert put(api.alice, second["id"], b"t" * (MIB // 2 + 1), "stage").status_code == 204  # at
    third = create(api.alice)
    refused = put(api.alice, third["id"], b"u", "stage")
    assert_over(refused, world.projects["alpha"], "image_stage_total", 1, 1, 1)
    assert api.alice.get(f"/v2/images/{third['id']}").json()["status"] == "queued"
    # Staged data does not count as stored data.
    assert usage(api.alice)["image_size_total"]["usage"] == 0


def test_image_count_uploading_below_at_and_above(api: Callers, world: World) -> None:
    register(api, "image_count_uploading", 2)
    images = [create(api.alice) for _ in range(3)]
    # A staged image is an upload in flight until it is imported.
    assert put(api.alice, images[0]["id"], b"a", "stage").status_code == 204  # below
    assert put(api.alice, images[1]["id"], b"b", "stage").status_code == 204  # at
    refused = put(api.alice, images[2]["id"], b"c", "stage")
    assert_over(refused, world.projects["alpha"], "image_count_uploading", 2, 2, 1)
    assert_over(
        put(api.alice, images[2]["id"], b"c"), world.projects["alpha"], "image_count_uploading", 2, 2, 1
    )
    assert usage(api.alice)["image_count_uploading"] == {"limit": 2, "usage": 2}
    assert api.alice.delete(f"/v2/images/{images[0]['id']}").status_code == 204
    assert put(api.alice, images[2]["id"], b"c").status_code == 204


# ---- GET /v2/info/usage ------------------------------------------------------------------------


def test_usage_shows_every_resource_of_the_callers_project(api: Callers, world: World) -> None:
    register(api, "image_size_total", 100)
    register(api, "image_count_total", 10)
    set_limit(api, world.projects["alpha"], "image_count_total", 4)
    upload(api.alice, create(api.alice)["id"], b"x" * (3 * MIB + 5))
    create(api.alice)
    create(api.bob)
    assert usage(api.alice) == {
        "image_size_total": {"limit": 100, "usage": 3},
        "image_stage_total": {"limit": -1, "usage": 0},
        "image_count_total": {"limit": 4, "usage": 2},
        "image_count_uploading": {"limit": -1, "usage": 0},
    }
    assert usage(api.bob)["image_count_total"] == {"limit": 10, "usage": 1}
    assert api.anonymous.get("/v2/info/usage").status_code == 401


# ---- owner changes -------------------------------------------------------------------------------


def give(api: Callers, image_id: str, owner: str) -> Any:
    return api.admin.patch(f"/v2/images/{image_id}", [{"op": "replace", "path": "/owner", "value": owner}])


def test_an_owner_change_counts_the_image_against_the_new_owner(api: Callers, world: World) -> None:
    register(api, "image_count_total", 2)
    register(api, "image_size_total", 2)
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    create(api.bob)
    held = create(api.bob)
    upload(api.bob, held["id"], b"b" * (MIB + MIB // 2))
    big, small = create(api.alice), create(api.alice)
    upload(api.alice, big["id"], b"a" * MIB)
    upload(api.alice, small["id"], b"s" * (MIB // 2))

    # beta owns 2 images already: one more is over its count, and nothing changes.
    assert_over(give(api, small["id"], beta), beta, "image_count_total", 2, 2, 1)
    assert api.admin.get(f"/v2/images/{small['id']}").json()["owner"] == alpha
    assert usage(api.bob)["image_count_total"] == {"limit": 2, "usage": 2}

    set_limit(api, beta, "image_count_total", 4)
    # 1.5 MiB + 1 MiB is over beta's 2 MiB (usage shown rounded down, the delta up, as on upload).
    assert_over(give(api, big["id"], beta), beta, "image_size_total", 2, 1, 1)
    assert api.admin.get(f"/v2/images/{big['id']}").json()["owner"] == alpha
    # 1.5 MiB + 0.5 MiB is exactly at the limit.
    given = give(api, small["id"], beta)
    assert given.status_code == 200, given.text
    assert given.json()["owner"] == beta
    assert usage(api.bob)["image_count_total"] == {"limit": 4, "usage": 3}
    assert usage(api.bob)["image_size_total"] == {"limit": 2, "usage": 2}
    # alpha's usage dropped by as much.
    assert usage(api.alice)["image_count_total"] == {"limit": 2, "usage": 1}
    assert usage(api.alice)["image_size_total"] == {"limit": 2, "usage": 1}


def test_an_owner_change_without_limits_is_not_checked(api: Callers, world: World) -> None:
    register(api, "image_count_total", 0)
    set_limit(api, world.projects["alpha"], "image_count_total", 1)
    mine = create(api.alice)
    # beta may own no image: the move is refused; with its limit lifted (-1), it goes through.
    assert_over(
        give(api, mine["id"], world.projects["beta"]), world.projects["beta"], "image_count_total", 0, 0, 1
    )
    set_limit(api, world.projects["beta"], "image_count_total", -1)
    assert give(api, mine["id"], world.projects["beta"]).status_code == 200
