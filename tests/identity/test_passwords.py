"""Password checks take the same path whether or not the user exists (no enumeration by timing)."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from spyglass.identity import passwords
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


def _login(client: TestClient, user: dict[str, Any], password: str = "wrong-password") -> int:
    identity = {"methods": ["password"], "password": {"user": {**user, "password": password}}}
    body = {"auth": {"identity": identity}}
    return client.post(f"{V3}/auth/tokens", json=body).status_code


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
