"""Failed password logins are throttled per user and address and per address, in the database."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.tables import login_failures
from spyglass.settings import Settings
from tests.conftest import PASSWORD

V3 = "/identity/v3"
ATTACKER, ALICE_HOME = "203.0.113.9", "198.51.100.7"
Client = Callable[..., TestClient]


@pytest.fixture
def client_at(settings: Settings, db: Database) -> Iterator[Client]:
    """A client of an app with some settings changed, calling from the given address."""
    with contextlib.ExitStack() as stack:

        def make(address: str, **changed: Any) -> TestClient:
            app = create_app(
                dataclasses.replace(settings, **changed), db=db, store=FilesystemStore(settings.blob_dir)
            )
            return stack.enter_context(
                TestClient(app, base_url="http://127.0.0.1:9292", client=(address, 50000))
            )

        yield make


def _login(client: TestClient, name: str = "alice", password: str = "wrong-password") -> Any:
    user = {"name": name, "domain": {"id": "default"}, "password": password}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    return client.post(f"{V3}/auth/tokens", json=body)


def test_failures_for_one_user_from_one_address_are_throttled(client_at: Client) -> None:
    limits = {"login_failures_per_user_address": 3, "login_failure_window_seconds": 600}
    attacker, home = client_at(ATTACKER, **limits), client_at(ALICE_HOME, **limits)
    assert [_login(attacker).status_code for _ in range(3)] == [401, 401, 401]
    throttled = _login(attacker)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 600
    assert "Too many failed logins" in throttled.json()["error"]["message"]
    # Not even the right password gets through from there, but alice's own address is unaffected.
    assert _login(attacker, password=PASSWORD).status_code == 429
    assert _login(home, password=PASSWORD).status_code == 201
    # Other users are not throttled from the attacker's address by alice's counter.
    assert _login(attacker, "bob", PASSWORD).status_code == 201


def test_failures_from_one_address_for_many_users_are_throttled(client_at: Client) -> None:
    limits = {"login_failures_per_address": 3, "login_failures_per_user_address": 0}
    attacker, home = client_at(ATTACKER, **limits), client_at(ALICE_HOME, **limits)
    assert [_login(attacker, name).status_code for name in ("alice", "bob", "nobody")] == [401] * 3
    assert _login(attacker, "rita", PASSWORD).status_code == 429
    assert _login(home, password=PASSWORD).status_code == 201


def test_missing_users_are_counted_like_existing_ones(client_at: Client) -> None:
    attacker = client_at(ATTACKER, login_failures_per_user_address=2)
    assert [_login(attacker, "nobody").status_code for _ in range(3)] == [401, 401, 429]


def test_a_success_clears_the_failures_of_its_user_and_address(client_at: Client) -> None:
    home = client_at(ALICE_HOME, login_failures_per_user_address=3)
    assert [_login(home).status_code for _ in range(2)] == [401, 401]
    assert _login(home, password=PASSWORD).status_code == 201
    assert [_login(home).status_code for _ in range(2)] == [401, 401]


def test_failures_older_than_the_window_no_longer_count(client_at: Client, db: Database) -> None:
    attacker = client_at(ATTACKER, login_failures_per_user_address=2, login_failure_window_seconds=60)
    assert [_login(attacker).status_code for _ in range(3)] == [401, 401, 429]
    with db.write() as conn:
        aged = login_failures.c.failed_at - timedelta(seconds=61)
        conn.execute(update(login_failures).values(failed_at=aged))
    assert _login(attacker, password=PASSWORD).status_code == 201


def test_limits_of_zero_turn_throttling_off(client_at: Client) -> None:
    attacker = client_at(ATTACKER, login_failures_per_user_address=0, login_failures_per_address=0)
    assert {_login(attacker).status_code for _ in range(7)} == {401}


def test_counters_are_shared_by_every_process_on_the_database(client_at: Client) -> None:
    # Two apps stand for two worker processes or nodes: the counts live in the database.
    first, second = client_at(ATTACKER, login_failures_per_user_address=2), client_at(ATTACKER)
    assert _login(first).status_code == 401
    assert _login(second).status_code == 401
    assert _login(first).status_code == 429


def test_failed_logins_are_logged_without_the_password(
    client_at: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spyglass.identity.throttle"):
        assert _login(client_at(ATTACKER), password="hunter2-secret").status_code == 401
    (record,) = [r for r in caplog.records if r.name == "spyglass.identity.throttle"]
    assert "'alice'" in record.getMessage() and ATTACKER in record.getMessage()
    assert "hunter2-secret" not in caplog.text
