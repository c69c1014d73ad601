"""Keystone's project lifecycle on the message bus, end to end: a real Keystone that sends its
notifications (driver messagingv2, its default `cadf` format) to the real RabbitMQ, and a real
`spyglass serve` with identity = "keystone" listening to them, driven by the real `openstack` CLI.

This module starts a Keystone of its own (scripts/ensure-keystone.sh with a state directory of its
own and KEYSTONE_NOTIFICATIONS_URL) on a virtual host of its own: the shared Keystone of the other
tests sends no notifications, and switching them on there would restart it under those tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_keystone_cli import Cloud, _ids
from tests.keystone import Keystone, start_keystone, stop_keystone
from tests.rabbitmq import broker, eventually, new_vhost, queue_state, rabbitmqctl

__all__ = ["broker"]

pytestmark = pytest.mark.timeout(900)
POOL = "spyglass"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, broker: str) -> Iterator[Cloud]:
    base = tmp_path_factory.mktemp("keystone-bus")
    vhost, url = new_vhost(broker)
    state = base / "keystone"
    try:
        keystone = Keystone(start_keystone(KEYSTONE_STATE_DIR=str(state), KEYSTONE_NOTIFICATIONS_URL=url))
        config = keystone.spyglass_config(
            base / "spyglass.toml",
            f'keystone_notifications_transport_url = "{url}"\nkeystone_notifications_pool = "{POOL}"\n',
            token_cache_time=5,
            http_connect_timeout=30,
        )
        server = start_server(base / "data", env={"SPYGLASS_CONFIG": str(config)})
        try:
            region = f"Test-{uuid.uuid4().hex[:8]}"
            keystone.identity_in_region(region)
            made = Cloud(server, keystone, config, region)
            registered = made.spyglass(
                "keystone", "register", "--public-url", server.url, "--region", region, "--os-cloud", "admin"
            )
            assert registered.returncode == 0, registered.stderr
            # Keystone's messages reach the pool's queue once the server declared it (one
            # consumer for each worker process of `spyglass serve`).
            eventually(
                lambda: (state := queue_state(url, POOL)) is not None and state.consumers >= 1,
                f"spyglass serve listening on queue {POOL} (see {server.log})",
            )
            yield made
        finally:
            stop_server(server)
    finally:
        stop_keystone(state)
        rabbitmqctl("delete_vhost", vhost)


def _members(server: Server, image_id: str) -> set[str]:
    return {row["Member ID"] for row in server.openstack_json("a", "image", "member", "list", image_id)}


def test_deleted_and_disabled_projects_reach_spyglass_through_the_bus(cloud: Cloud) -> None:
    server, keystone = cloud.server, cloud.keystone
    # A shares with B and C, both accept; C also shares one image of its own with B.
    c = keystone.account("gamma", domain_id=keystone.create_domain("dom-c")["id"])
    cloud.add_cloud("c", c)
    shared = server.create_image("a", "a-shared", "--shared")["id"]
    for member in (cloud.b, c):
        server.openstack("a", "image", "add", "project", shared, member.project_id)
    server.openstack("b", "image", "set", "--accept", shared)
    server.openstack("c", "image", "set", "--accept", shared)
    of_c = server.create_image("c", "c-shared", "--shared")["id"]
    server.openstack("c", "image", "add", "project", of_c, cloud.b.project_id)
    server.openstack("b", "image", "set", "--accept", of_c)
    assert {shared, of_c} <= _ids(server, "b")
    assert _members(server, shared) == {cloud.b.project_id, c.project_id}

    # C's project deleted in Keystone: its membership goes, its image is private (data kept).
    keystone.delete_project(c.project_id)
    eventually(lambda: _members(server, shared) == {cloud.b.project_id}, "C's membership removed")
    assert server.openstack_json("admin", "image", "show", of_c)["visibility"] == "private"
    assert of_c not in _ids(server, "b")

    # A's project disabled in Keystone: what A shares is suspended; enabled again: restored.
    keystone.set_project_enabled(cloud.a.project_id, False)
    eventually(lambda: shared not in _ids(server, "b"), "A's shares suspended")
    keystone.set_project_enabled(cloud.a.project_id, True)
    eventually(lambda: shared in _ids(server, "b"), "A's shares restored")
    assert _members(server, shared) == {cloud.b.project_id}
