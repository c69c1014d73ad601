"""Findings of a security and correctness review: each test pins one fixed bug."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from spyglass.db.engine import Database
from spyglass.db.tables import image_properties
from spyglass.settings import Settings
from tests.api.helpers import active
from tests.api.safety import callers_with, share
from tests.conftest import Callers, World
from tests.identity.test_admin_api import V3, role_ids, session


@pytest.fixture
def binned(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    with callers_with(settings, db, world, recycle_retention_days=7) as api:
        yield api


def test_an_image_in_the_bin_is_no_list_marker_for_its_former_members(binned: Callers, world: World) -> None:
    image_id = share(binned.alice, world.projects["beta"], binned.bob)
    assert binned.bob.get(f"/v2/images?marker={image_id}").status_code == 200
    assert binned.alice.delete(f"/v2/images/{image_id}").status_code == 204
    # As for an image that does not exist: the member must not learn that it waits in the bin.
    assert binned.bob.get(f"/v2/images/{image_id}").status_code == 404
    assert binned.bob.get(f"/v2/images?marker={image_id}").status_code == 400


def test_a_copy_does_not_inherit_the_source_s_import_bookkeeping(
    api: Callers, world: World, db: Database
) -> None:
    image_id = share(api.alice, world.projects["beta"], api.bob)
    with db.write() as conn:
        conn.execute(
            insert(image_properties),
            [
                {"image_id": image_id, "name": "os_glance_import_task", "value": "some-task"},
                {"image_id": image_id, "name": "os_glance_failed_import", "value": "s3"},
            ],
        )
    copied = api.bob.post(f"/v2/images/{image_id}/actions/copy")
    assert copied.status_code == 201, copied.text
    assert not [k for k in copied.json() if k.startswith("os_glance")]


def test_event_and_usage_params_that_are_not_ascii_digits(api: Callers) -> None:
    image_id = active(api.alice)["id"]
    for query in ("marker=%C2%B2", "limit=%C2%B2", "marker=99999999999999999999999999"):
        response = api.alice.get(f"/v2/images/{image_id}/events?{query}")
        assert response.status_code == 400, (query, response.status_code)


def test_domain_scoped_tokens_cannot_create_ownerless_images(api: Callers, world: World) -> None:
    member = role_ids(api)["member"]
    granted = api.admin.put(f"{V3}/domains/default/users/{world.users['alice']}/roles/{member}")
    assert granted.status_code == 204
    domain_alice = session(api.alice.client, "alice", domain={"id": "default"})
    created = domain_alice.post("/v2/images", json={"name": "x"})
    assert created.status_code in (401, 403), created.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://[::1]:9292/",
        "https://10.0.0.1/",
    ],
)
def test_webhooks_to_addresses_inside_the_cloud_are_refused(api: Callers, url: str) -> None:
    response = api.alice.post("/v2/webhooks", json={"url": url})
    assert response.status_code == 400, response.text
    assert "may not reach" in response.text


def test_allowed_networks_let_webhooks_reach_inside(settings: Settings, db: Database, world: World) -> None:
    with callers_with(settings, db, world, web_download_allowed_networks=("127.0.0.1/32",)) as local:
        assert local.alice.post("/v2/webhooks", json={"url": "http://127.0.0.1:8080/"}).status_code == 201
        assert local.alice.post("/v2/webhooks", json={"url": "http://10.0.0.1/"}).status_code == 400
