"""identity = "keystone": tokens validated against a real Keystone (scripts/ensure-keystone.sh)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.keystone_settings import KeystoneAuthtoken
from spyglass.settings import Settings
from tests.keystone import Keystone, Relay

Client = Callable[..., TestClient]


@pytest.fixture
def keystone_client(settings: Settings, db: Database, keystone: Keystone) -> Iterator[Client]:
    """A factory of in-process Spyglass apps that trust `keystone` (or a URL in front of it)."""
    opened: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        authtoken = KeystoneAuthtoken(**keystone.authtoken_options(**options))
        configured = dataclasses.replace(settings, identity="keystone", keystone_authtoken=authtoken)
        app = create_app(configured, db=db, store=FilesystemStore(settings.blob_dir))
        client = TestClient(app, base_url="http://127.0.0.1:9292")
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _get(client: TestClient, token: str, path: str = "/v2/images", **headers: str) -> Any:
    return client.get(path, headers={"X-Auth-Token": token, **headers})


def test_a_keystone_project_token_reaches_the_image_api(keystone_client: Client, keystone: Keystone) -> None:
    client = keystone_client()
    alice = keystone.account("alice")
    token = keystone.account_token(alice)
    created = client.post(
        "/v2/images",
        json={"name": "from-keystone", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": token},
    )
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == alice.project_id
    assert [i["name"] for i in _get(client, token).json()["images"]] == ["from-keystone"]


def test_roles_are_the_ones_keystone_expanded(keystone_client: Client, keystone: Keystone) -> None:
    client = keystone_client()
    # `member` implies `reader` in a bootstrapped Keystone: Keystone's token lists both.
    ctx = client.app.state.authenticator.authenticate(keystone.account_token(keystone.account("roles")))  # type: ignore[attr-defined]
    assert {"member", "reader"} <= ctx.roles
    assert not ctx.is_admin


def test_bad_tokens_get_401_pointing_at_keystone(keystone_client: Client, keystone: Keystone) -> None:
    client = keystone_client(www_authenticate_uri="https://keystone.example.test/v3")
    for token in ("garbage", "gAAAAABnotafernettoken"):
        refused = _get(client, token)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Keystone uri="https://keystone.example.test/v3"'


def test_the_embedded_identity_api_is_not_served(keystone_client: Client) -> None:
    client = keystone_client()
    assert client.get("/identity/v3").status_code == 404
    assert client.post("/identity/v3/auth/tokens", json={}).status_code == 404
    assert client.get("/image").status_code == 300  # the image API's version discovery


def test_a_token_revoked_in_keystone_stops_within_the_cache_time(
    keystone_client: Client,
    keystone: Keystone,
) -> None:
    client = keystone_client(token_cache_time=2)
    token = keystone.account_token(keystone.account("revoked"))
    assert _get(client, token).status_code == 200
    keystone.revoke(token)
    deadline = time.monotonic() + 2 + 1
    while _get(client, token).status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still worked past token_cache_time"
        time.sleep(0.2)
    assert _get(client, token).status_code == 401


def test_with_the_cache_off_a_revoked_token_stops_at_once(
    keystone_client: Client, keystone: Keystone
) -> None:
    client = keystone_client(token_cache_time=0)
    token = keystone.account_token(keystone.account("uncached"))
    assert _get(client, token).status_code == 200
    keystone.revoke(token)
    assert _get(client, token).status_code == 401


def test_keystone_down_cached_tokens_work_new_ones_get_503(
    keystone_client: Client,
    keystone: Keystone,
) -> None:
    relay = Relay(keystone.url)
    try:
        client = keystone_client(auth_url=relay.url, token_cache_time=300, http_connect_timeout=2)
        cached = keystone.account_token(keystone.account("cached"))
        fresh = keystone.account_token(keystone.account("fresh"))
        assert _get(client, cached).status_code == 200
        relay.cut()
        assert _get(client, cached).status_code == 200
        refused = _get(client, fresh, accept="application/json")
        assert refused.status_code == 503, refused.text
        assert "Keystone" in refused.json()["message"]
        assert refused.headers["Retry-After"]
        relay.restore()
        assert _get(client, fresh).status_code == 200
    finally:
        relay.close()


def test_keystone_slow_gets_503_not_a_pass(keystone_client: Client, keystone: Keystone) -> None:
    relay = Relay(keystone.url)
    try:
        client = keystone_client(auth_url=relay.url, http_connect_timeout=3)
        token = keystone.account_token(keystone.account("slow"))
        client.app.state.authenticator.session.get_token()  # type: ignore[attr-defined]
        relay.delay = 6
        started = time.monotonic()
        assert _get(client, token).status_code == 503
        assert time.monotonic() - started < 6
    finally:
        relay.close()


def test_service_credentials_refused_by_keystone_are_a_503(
    keystone_client: Client, keystone: Keystone
) -> None:
    client = keystone_client(password="not-the-password")
    token = keystone.account_token(keystone.account("badservice"))
    answer = _get(client, token, accept="application/json")
    assert answer.status_code == 503
    assert "Keystone" in answer.json()["message"]
