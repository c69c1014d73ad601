"""Password checks: the same path whether or not the user exists (no enumeration by timing), and
a bounded number at once, so a login storm cannot take the server from image requests."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.identity import passwords
from spyglass.settings import Settings
from tests.conftest import Callers, World

V3 = "/identity/v3"


class RecordingHasher(PasswordHasher):
    """The real hasher, noting which hashes it was asked to verify."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(str(hash))
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> RecordingHasher:
    recording = RecordingHasher()
    monkeypatch.setattr(passwords, "_hasher", recording)
    return recording


def _body(user: dict[str, Any], password: str = "wrong-password") -> dict[str, Any]:
    identity = {"methods": ["password"], "password": {"user": {**user, "password": password}}}
    return {"auth": {"identity": identity}}


def _login(client: TestClient, user: dict[str, Any], password: str = "wrong-password") -> int:
    return client.post(f"{V3}/auth/tokens", json=_body(user, password)).status_code


@pytest.mark.parametrize(
    "user",
    [
        {"name": "nobody", "domain": {"id": "default"}},
        {"name": "alice", "domain": {"id": "no-such-domain"}},
        {"name": "alice", "domain": {"name": "No such domain"}},
        {"id": "0123456789abcdef0123456789abcdef"},
    ],
)
def test_a_missing_user_costs_one_hash_check_like_a_wrong_password(
    client: TestClient, hasher: RecordingHasher, user: dict[str, Any]
) -> None:
    assert _login(client, {"name": "alice", "domain": {"id": "default"}}) == 401
    assert len(hasher.verified) == 1
    assert _login(client, user) == 401
    assert len(hasher.verified) == 2
    assert hasher.verified[1] != hasher.verified[0]  # the dummy hash, not alice's


def test_a_disabled_user_costs_one_hash_check(
    api: Callers, client: TestClient, world: World, hasher: RecordingHasher
) -> None:
    response = api.admin.patch_json(f"{V3}/users/{world.users['bob']}", {"user": {"enabled": False}})
    assert response.status_code == 200
    assert _login(client, {"id": world.users["bob"]}) == 401
    assert len(hasher.verified) == 1


class BlockingHasher(PasswordHasher):
    """The real hasher, holding every check until released, counting how many ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = self.most = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.entered.release()
        self.release.wait(60)
        with self._lock:
            self.running -= 1
        return super().verify(hash, password)


def _wait_for(condition: Any) -> None:
    for _ in range(6000):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("condition never became true")


def test_logins_beyond_the_bound_are_refused_not_queued(
    settings: Settings, db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocking = BlockingHasher()
    monkeypatch.setattr(passwords, "_hasher", blocking)
    bounded = dataclasses.replace(settings, password_check_concurrency=1, password_check_queue=1)
    app = create_app(bounded, db=db, store=FilesystemStore(settings.blob_dir))
    alice = {"name": "alice", "domain": {"id": "default"}}
    with TestClient(app, base_url="http://127.0.0.1:9292") as client, ThreadPoolExecutor(2) as pool:
        checking = pool.submit(_login, client, alice)
        assert blocking.entered.acquire(timeout=60)
        waiting = pool.submit(_login, client, alice)
        _wait_for(lambda: app.state.spyglass.password_checks.admitted == 2)
        refused = client.post(f"{V3}/auth/tokens", json=_body(alice))
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        # Image requests and token logins take no slot and go on meanwhile.
        images = client.get("/v2/images", headers={"X-Auth-Token": world.tokens["alice"]})
        assert images.status_code == 200
        by_token = {"auth": {"identity": {"methods": ["token"], "token": {"id": world.tokens["bob"]}}}}
        assert client.post(f"{V3}/auth/tokens", json=by_token).status_code == 201
        blocking.release.set()
        assert (checking.result(), waiting.result()) == (401, 401)
    assert blocking.most == 1
    assert app.state.spyglass.password_checks.admitted == 0
