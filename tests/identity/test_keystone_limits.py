"""identity = "keystone": quotas limited by the unified limits of a real Keystone
(scripts/ensure-keystone.sh), set with the real `openstack` CLI, read through the service user
and kept `limits_cache_time` seconds (a test clock stands in for time).

Every test works in a region of its own, so that its registered limits reach no other test."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.identity.keystone_limits import KeystoneLimits
from spyglass.images.quotas import Quotas
from spyglass.keystone_settings import KeystoneAuthtoken
from spyglass.settings import Settings
from tests.keystone import Keystone, Relay

OPENSTACK = Path(sys.executable).parent / "openstack"
CACHE_TIME = 5
# The CLI and the account tokens ask the shared test Keystone, slow on a loaded machine.
pytestmark = pytest.mark.timeout(900)
MIB = 1024 * 1024
IMAGE = {"disk_format": "raw", "container_format": "bare"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def past_cache_time(self) -> None:
        self.now += CACHE_TIME + 1


Make = Callable[..., tuple[TestClient, Clock]]


@pytest.fixture
def keystone_app(settings: Settings, db: Database, keystone: Keystone) -> Iterator[Make]:
    """A factory of in-process Spyglass apps trusting `keystone`, in `region`, with the clock of
    their limits cache in the test's hands."""
    opened: list[TestClient] = []

    def make(region: str, **options: Any) -> tuple[TestClient, Clock]:
        authtoken = KeystoneAuthtoken(**keystone.authtoken_options(http_connect_timeout=30, **options))
        configured = dataclasses.replace(
            settings,
            identity="keystone",
            keystone_authtoken=authtoken,
            region=region,
            limits_cache_time=CACHE_TIME,
        )
        source = Quotas.of(configured).source
        assert isinstance(source, KeystoneLimits)
        clock = Clock()
        source.clock = clock
        client = TestClient(create_app(configured, db=db, store=FilesystemStore(settings.blob_dir)))
        client.__enter__()
        opened.append(client)
        return client, clock

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def openstack(keystone: Keystone, *args: str) -> None:
    env = {**os.environ, **keystone.admin_environment()}
    done = subprocess.run([str(OPENSTACK), *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr


def create(client: TestClient, token: str) -> Any:
    return client.post("/v2/images", json=IMAGE, headers={"X-Auth-Token": token})


def usage(client: TestClient, token: str) -> dict[str, Any]:
    answer = client.get("/v2/info/usage", headers={"X-Auth-Token": token})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["usage"]
    return found


def test_limits_set_with_the_cli_apply_within_the_cache_time(keystone_app: Make, keystone: Keystone) -> None:
    region = keystone.create_region("limits")
    service = keystone.image_service_id()
    account = keystone.account("quota")
    client, clock = keystone_app(region)
    token = keystone.account_token(account)

    # No registered limit: unlimited, as Glance.
    assert [create(client, token).status_code for _ in range(2)] == [201, 201]
    assert usage(client, token)["image_count_total"] == {"limit": -1, "usage": 2}

    openstack(
        keystone, "registered", "limit", "create", "--service", service, "--region", region,
        "--default-limit", "3", "image_count_total",
    )  # fmt: skip
    # (The test Keystone's tokens last a minute, and a CLI call can take seconds.)
    token = keystone.account_token(account)
    # Within the cache time the limits read before still hold: no limit yet.
    assert create(client, token).status_code == 201
    clock.past_cache_time()
    refused = create(client, token)
    assert refused.status_code == 413
    assert (
        f"Project {account.project_id} is over a limit for [Resource image_count_total is over limit "
        "of 3 due to current usage 3 and delta 1]"
    ) in refused.text
    assert usage(client, token)["image_count_total"] == {"limit": 3, "usage": 3}

    openstack(
        keystone, "limit", "create", "--project", account.project_id, "--service", service,
        "--region", region, "--resource-limit", "4", "image_count_total",
    )  # fmt: skip
    clock.past_cache_time()
    token = keystone.account_token(account)
    assert create(client, token).status_code == 201
    assert create(client, token).status_code == 413
    assert usage(client, token)["image_count_total"] == {"limit": 4, "usage": 4}

    # Uploads: 1 MiB of image data for the project.
    openstack(
        keystone, "registered", "limit", "create", "--service", service, "--region", region,
        "--default-limit", "1", "image_size_total",
    )  # fmt: skip
    clock.past_cache_time()
    token = keystone.account_token(account)
    images = client.get("/v2/images", headers={"X-Auth-Token": token}).json()["images"]
    first, second = images[0]["id"], images[1]["id"]
    headers = {"X-Auth-Token": token, "Content-Type": "application/octet-stream"}
    too_big = client.put(f"/v2/images/{first}/file", content=b"x" * (2 * MIB), headers=headers)
    assert too_big.status_code == 413, too_big.text
    assert "image_size_total is over limit of 1" in too_big.text
    assert client.get(f"/v2/images/{first}", headers=headers).json()["status"] == "queued"
    assert (
        client.put(f"/v2/images/{second}/file", content=b"x" * (MIB // 2), headers=headers).status_code == 204
    )
    assert usage(client, token)["image_size_total"] == {"limit": 1, "usage": 0}


def test_another_regions_limits_do_not_apply(keystone_app: Make, keystone: Keystone) -> None:
    mine, other = keystone.create_region("limits"), keystone.create_region("limits-other")
    service = keystone.image_service_id()
    body = {
        "service_id": service,
        "region_id": other,
        "resource_name": "image_count_total",
        "default_limit": 0,
    }
    keystone.call("POST", "/registered_limits", {"registered_limits": [body]})
    account = keystone.account("regions")
    client, _ = keystone_app(mine)
    token = keystone.account_token(account)
    assert create(client, token).status_code == 201
    assert usage(client, token)["image_count_total"] == {"limit": -1, "usage": 1}


def test_keystone_down_fails_closed_once_the_cached_limits_expire(
    keystone_app: Make, keystone: Keystone
) -> None:
    region = keystone.create_region("limits")
    service = keystone.image_service_id()
    body = {
        "service_id": service,
        "region_id": region,
        "resource_name": "image_count_total",
        "default_limit": 10,
    }
    keystone.call("POST", "/registered_limits", {"registered_limits": [body]})
    account = keystone.account("down")
    relay = Relay(keystone.url)
    try:
        client, clock = keystone_app(region, auth_url=relay.url)
        token = keystone.account_token(account)
        assert create(client, token).status_code == 201
        relay.cut()
        # The token and the limits were read moments ago: both still hold.
        assert create(client, token).status_code == 201
        clock.past_cache_time()
        refused = create(client, token)
        assert refused.status_code == 503
        assert "cannot be reached to read the quota limits" in refused.text
        assert refused.headers["Retry-After"]
        # Nothing was created, and what needs no limit still works.
        listed = client.get("/v2/images", headers={"X-Auth-Token": token})
        assert len(listed.json()["images"]) == 2
        relay.restore()
        assert create(client, token).status_code == 201
    finally:
        relay.close()
