"""Image properties: a cap on each value, and the `spyglass_` properties that only Spyglass writes."""

from __future__ import annotations

import pytest

from spyglass.images import impact as safeguards
from spyglass.images import patch as image_patch
from tests.api.helpers import active, create, message
from tests.conftest import Callers

MAX = 65535


@pytest.mark.parametrize("value", ["v" * (MAX + 1), "é" * (MAX // 2 + 1)])  # 65536 bytes, 65536 in UTF-8
def test_create_refuses_a_value_past_the_cap_naming_the_property(api: Callers, value: str) -> None:
    response = api.alice.post("/v2/images", json={"name": "big", "notes": value})
    assert response.status_code == 400
    assert message(response) == "The value of property 'notes' is 65536 bytes; at most 65535 are accepted."
    names = [image["name"] for image in api.alice.get("/v2/images").json()["images"]]
    assert "big" not in names


def test_patch_refuses_a_value_past_the_cap_and_changes_nothing(api: Callers) -> None:
    image = create(api.alice, notes="short")
    ops = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/notes", "value": "v" * (MAX + 1)},
    ]
    response = api.alice.patch(f"/v2/images/{image['id']}", ops)
    assert response.status_code == 400
    assert "'notes'" in message(response)
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["name"], shown["notes"]) == (image["name"], "short")


def test_a_value_at_the_cap_is_kept_whole(api: Callers) -> None:
    image = create(api.alice, notes="é" * (MAX // 2))
    assert api.alice.get(f"/v2/images/{image['id']}").json()["notes"] == "é" * (MAX // 2)


@pytest.mark.parametrize("name", ["spyglass_copied_from_image", "spyglass_copied_at", "spyglass_future"])
def test_owners_cannot_create_spyglass_properties(api: Callers, name: str) -> None:
    response = api.alice.post("/v2/images", json={name: "forged"})
    assert response.status_code == 403
    assert f"Attribute '{name}' is reserved." in response.json()["message"]


@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_a_copy_provenance_cannot_be_forged_or_removed(api: Callers, op: str) -> None:
    source = active(api.alice, visibility="community")
    response = api.bob.post(f"/v2/images/{source['id']}/actions/copy")
    assert response.status_code == 201, response.text
    copy = response.json()
    change = {"op": op, "path": "/spyglass_copied_from_image"} | ({} if op == "remove" else {"value": "x"})
    refused = api.bob.patch(f"/v2/images/{copy['id']}", [change])
    assert refused.status_code == 403
    assert "is reserved" in refused.json()["message"]
    # The copy's other properties stay the owner's to edit.
    edited = api.bob.patch(f"/v2/images/{copy['id']}", [{"op": "add", "path": "/notes", "value": "mine"}])
    assert edited.status_code == 200, edited.text
    assert edited.json()["spyglass_copied_from_image"] == source["id"]


def test_owners_still_set_the_documented_opt_in(api: Callers) -> None:
    image = create(api.alice, spyglass_protect_consumers="true")
    assert image["spyglass_protect_consumers"] == "true"
    ops = [{"op": "replace", "path": "/spyglass_protect_consumers", "value": "false"}]
    assert api.alice.patch(f"/v2/images/{image['id']}", ops).status_code == 200
    ops = [{"op": "remove", "path": "/spyglass_protect_consumers"}]
    assert api.alice.patch(f"/v2/images/{image['id']}", ops).status_code == 200


def test_the_opt_in_that_safeguards_reads_is_owner_settable() -> None:
    assert safeguards.PROTECT_PROPERTY in image_patch.OWNER_SETTABLE
    assert not image_patch.is_reserved(safeguards.PROTECT_PROPERTY)
