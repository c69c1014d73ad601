"""Service tokens (X-Service-Token) with identity = "keystone", as keystonemiddleware accepts them:
Nova-style long-running work carries the user's token, maybe expired by now, and a service token."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.keystone_settings import KeystoneAuthtoken
from spyglass.settings import Settings
from tests.keystone import Keystone

# The test Keystone's tokens last this long (scripts/ensure-keystone.sh, KEYSTONE_TOKEN_EXPIRATION).
TOKEN_LIFETIME = 60


@pytest.fixture
def client(settings: Settings, db: Database, keystone: Keystone) -> Iterator[TestClient]:
    authtoken = KeystoneAuthtoken(**keystone.authtoken_options(token_cache_time=0))
    configured = dataclasses.replace(settings, identity="keystone", keystone_authtoken=authtoken)
    app = create_app(configured, db=db, store=FilesystemStore(settings.blob_dir))
    with TestClient(app, base_url="http://127.0.0.1:9292") as test_client:
        yield test_client


def test_an_expired_user_token_passes_only_with_a_service_token_holding_a_service_role(
    client: TestClient, keystone: Keystone
) -> None:
    user = keystone.account("nova-user")
    user_token = keystone.account_token(user)
    created = client.post(
        "/v2/images",
        json={"name": "long-running", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": user_token},
    )
    assert created.status_code == 201
    image = f"/v2/images/{created.json()['id']}"
    # Nova's service user: the role `service` in its project, as service_token_roles asks.
    nova = keystone.account("nova", role="service")
    # Not a service role: a user with `member` only.
    pretender = keystone.account("pretender", role="member")

    deadline = time.monotonic() + TOKEN_LIFETIME + 30
    while client.get(image, headers={"X-Auth-Token": user_token}).status_code == 200:
        assert time.monotonic() < deadline, "the user token never expired"
        time.sleep(2)
    expired = {"X-Auth-Token": user_token}
    assert client.get(image, headers=expired).status_code == 401

    with_service = client.get(image, headers={**expired, "X-Service-Token": keystone.account_token(nova)})
    assert with_service.status_code == 200, with_service.text
    assert with_service.json()["owner"] == user.project_id

    without_role = {**expired, "X-Service-Token": keystone.account_token(pretender)}
    assert client.get(image, headers=without_role).status_code == 401
    garbage = {**expired, "X-Service-Token": "garbage"}
    assert client.get(image, headers=garbage).status_code == 401
    # A valid user token with a service token lacking the roles is refused too, as keystonemiddleware
    # refuses it with service_token_roles_required.
    fresh = keystone.account_token(user)
    assert (
        client.get(image, headers={"X-Auth-Token": fresh, **{"X-Service-Token": "garbage"}}).status_code
        == 401
    )
