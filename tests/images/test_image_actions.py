"""DELETE /v2/images/{id}, tags, and the deactivate / reactivate actions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from spyglass.db.engine import Database
from spyglass.identity.authn import EmbeddedAuthenticator
from spyglass.images import catalog
from tests.api.helpers import active, create, message
from tests.conftest import Callers, World

UNKNOWN = "00000000-0000-0000-0000-000000000000"


def _share(api: Callers, world: World, image_id: str) -> None:
    response = api.alice.post(f"/v2/images/{image_id}/members", json={"member": world.projects["beta"]})
    assert response.status_code == 200, response.text


# ---- delete -------------------------------------------------------------------------------------------


def test_delete_204_then_gone(api: Callers) -> None:
    image = create(api.alice)
    response = api.alice.delete(f"/v2/images/{image['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert api.alice.get(f"/v2/images/{image['id']}").status_code == 404
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 404


def test_delete_removes_the_data(api: Callers, settings: object) -> None:
    from pathlib import Path

    image = active(api.alice, b"bytes")
    blob_dir = Path(settings.blob_dir)  # type: ignore[attr-defined]
    assert len(list(blob_dir.iterdir())) == 1
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204
    assert list(blob_dir.iterdir()) == []


def test_delete_protected_403(api: Callers) -> None:
    image = create(api.alice, protected=True)
    response = api.alice.delete(f"/v2/images/{image['id']}")
    assert response.status_code == 403
    assert message(response) == f"Image {image['id']} is protected and cannot be deleted."
    assert api.admin.delete(f"/v2/images/{image['id']}").status_code == 403


def test_delete_by_member_403_as_glance(api: Callers, world: World) -> None:
    image = create(api.alice)
    _share(api, world, image["id"])
    response = api.bob.delete(f"/v2/images/{image['id']}")
    assert response.status_code == 403
    assert message(response) == "You are not authorized to complete delete_image action."


@pytest.mark.parametrize("visibility", ["community", "public"])
def test_delete_of_a_visible_image_of_another_project_403(api: Callers, visibility: str) -> None:
    image = create(api.admin if visibility == "public" else api.alice, visibility=visibility)
    assert api.bob.delete(f"/v2/images/{image['id']}").status_code == 403


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_delete_of_an_invisible_image_404(api: Callers, visibility: str) -> None:
    image = create(api.alice, visibility=visibility)
    response = api.bob.delete(f"/v2/images/{image['id']}")
    assert response.status_code == 404
    assert message(response) == f"No image found with ID {image['id']}"
    assert api.alice.get(f"/v2/images/{image['id']}").status_code == 200


def test_delete_unknown_malformed_reader_admin(api: Callers) -> None:
    assert api.alice.delete(f"/v2/images/{UNKNOWN}").status_code == 404
    assert api.alice.delete("/v2/images/zzz").status_code == 404
    image = create(api.alice)
    assert api.rita.delete(f"/v2/images/{image['id']}").status_code == 403
    assert api.admin.delete(f"/v2/images/{image['id']}").status_code == 204


def test_delete_deactivated_image(api: Callers) -> None:
    image = active(api.alice)
    assert api.alice.post(f"/v2/images/{image['id']}/actions/deactivate").status_code == 204
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204


# ---- tags ---------------------------------------------------------------------------------------------


def test_tag_put_and_delete(api: Callers) -> None:
    image = create(api.alice)
    url = f"/v2/images/{image['id']}"
    response = api.alice.put(f"{url}/tags/blue")
    assert response.status_code == 204
    assert response.content == b""
    assert api.alice.put(f"{url}/tags/blue").status_code == 204  # idempotent
    assert api.alice.put(f"{url}/tags/with%20space").status_code == 204
    assert api.alice.put(f"{url}/tags/%C3%A9t%C3%A9").status_code == 204
    assert sorted(api.alice.get(url).json()["tags"]) == ["blue", "with space", "été"]
    assert api.alice.delete(f"{url}/tags/blue").status_code == 204
    assert sorted(api.alice.get(url).json()["tags"]) == ["with space", "été"]


def test_tag_delete_missing_404(api: Callers) -> None:
    image = create(api.alice, tags=["a"])
    response = api.alice.delete(f"/v2/images/{image['id']}/tags/b")
    assert response.status_code == 404
    assert "b" in message(response)


def test_tag_too_long_400_and_too_many_413(api: Callers) -> None:
    image = create(api.alice, tags=[f"t{i}" for i in range(128)])
    assert api.alice.put(f"/v2/images/{image['id']}/tags/{'x' * 256}").status_code == 400
    assert api.alice.put(f"/v2/images/{image['id']}/tags/one-more").status_code == 413
    assert api.alice.put(f"/v2/images/{image['id']}/tags/t0").status_code == 204


def test_tags_by_others(api: Callers, world: World) -> None:
    image = create(api.alice, tags=["a"])
    _share(api, world, image["id"])
    assert api.bob.put(f"/v2/images/{image['id']}/tags/b").status_code == 403
    assert api.bob.delete(f"/v2/images/{image['id']}/tags/a").status_code == 403
    assert api.carol.put(f"/v2/images/{image['id']}/tags/b").status_code == 404
    assert api.carol.delete(f"/v2/images/{image['id']}/tags/a").status_code == 404
    assert api.rita.put(f"/v2/images/{image['id']}/tags/b").status_code == 403
    assert api.alice.put(f"/v2/images/{UNKNOWN}/tags/b").status_code == 404
    assert api.alice.delete(f"/v2/images/{UNKNOWN}/tags/b").status_code == 404


def test_a_bad_tag_on_an_image_the_caller_cannot_see_is_404(api: Callers) -> None:
    """Authorization comes first: the tag's validity is not judged for an invisible image. (A NUL
    in a path is a 404 for every image alike, before any of this: tests/api.)"""
    image = create(api.alice)
    tag = "x" * 256
    assert api.carol.put(f"/v2/images/{image['id']}/tags/{tag}").status_code == 404
    assert api.bob.put(f"/v2/images/{image['id']}/tags/{tag}").status_code == 404
    assert api.alice.put(f"/v2/images/{image['id']}/tags/{tag}").status_code == 400


# ---- deactivate / reactivate ---------------------------------------------------------------------------


def test_deactivate_and_reactivate(api: Callers) -> None:
    image = active(api.alice, b"payload")
    url = f"/v2/images/{image['id']}"
    response = api.alice.post(f"{url}/actions/deactivate")
    assert response.status_code == 204
    assert response.content == b""
    assert api.alice.get(url).json()["status"] == "deactivated"
    assert api.alice.post(f"{url}/actions/deactivate").status_code == 204  # already: no-op
    download = api.alice.get(f"{url}/file")
    assert download.status_code == 403
    assert message(download) == "The requested image has been deactivated. Image data download is forbidden."
    admin = api.admin.get(f"{url}/file")
    assert admin.status_code == 200
    assert admin.content == b"payload"
    assert api.alice.post(f"{url}/actions/reactivate").status_code == 204
    assert api.alice.get(url).json()["status"] == "active"
    assert api.alice.post(f"{url}/actions/reactivate").status_code == 204  # already: no-op
    assert api.alice.get(f"{url}/file").content == b"payload"


def test_deactivated_image_stays_listed(api: Callers) -> None:
    image = active(api.alice)
    api.alice.post(f"/v2/images/{image['id']}/actions/deactivate")
    listed = api.alice.get("/v2/images").json()["images"]
    assert [(i["id"], i["status"]) for i in listed] == [(image["id"], "deactivated")]


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_action_on_a_queued_image_403(api: Callers, action: str) -> None:
    image = create(api.alice)
    response = api.alice.post(f"/v2/images/{image['id']}/actions/{action}")
    assert response.status_code == 403
    assert message(response) == f"Not allowed to {action} image in status 'queued'"


def test_reactivate_an_active_image_is_a_no_op(api: Callers) -> None:
    image = active(api.alice)
    assert api.alice.post(f"/v2/images/{image['id']}/actions/reactivate").status_code == 204


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_actions_by_others(api: Callers, world: World, action: str) -> None:
    image = active(api.alice)
    if action == "reactivate":
        api.alice.post(f"/v2/images/{image['id']}/actions/deactivate")
    _share(api, world, image["id"])
    url = f"/v2/images/{image['id']}/actions/{action}"
    assert api.bob.post(url).status_code == 403
    assert api.rita.post(url).status_code == 403
    assert api.carol.post(url).status_code == 404
    assert api.alice.post(f"/v2/images/{UNKNOWN}/actions/{action}").status_code == 404
    assert api.admin.post(url).status_code == 204


def test_unknown_action_404(api: Callers) -> None:
    image = active(api.alice)
    assert api.alice.post(f"/v2/images/{image['id']}/actions/explode").status_code == 404


def test_tag_with_nul_404(api: Callers) -> None:
    # A NUL anywhere in a path is refused before routing, as a malformed id is (tests/api).
    image = create(api.alice)
    assert api.alice.put(f"/v2/images/{image['id']}/tags/a%00b").status_code == 404


def test_deactivated_image_shows_no_stores_as_glance(api: Callers) -> None:
    # 51-list-images-owner.http: the deactivated image is listed without "stores".
    image = active(api.alice)
    url = f"/v2/images/{image['id']}"
    api.alice.post(f"{url}/actions/deactivate")
    assert "stores" not in api.alice.get(url).json()
    assert "stores" not in api.admin.get(url).json()
    api.alice.post(f"{url}/actions/reactivate")
    assert api.alice.get(url).json()["stores"] == "fs"


def test_concurrent_puts_of_one_tag_add_it_once(api: Callers, db: Database, world: World) -> None:
    """Each PUT locks the image, then reads its tags after the lock (on PostgreSQL a statement that
    waited for the lock would see the tags as they were before the wait, and insert a duplicate)."""
    image_id = create(api.alice)["id"]
    alice = EmbeddedAuthenticator(db).authenticate(world.tokens["alice"])
    with ThreadPoolExecutor(8) as pool:
        done = [pool.submit(catalog.add_tag, db, alice, image_id, "same") for _ in range(16)]
        for future in done:
            future.result()
    assert api.alice.get(f"/v2/images/{image_id}").json()["tags"] == ["same"]
