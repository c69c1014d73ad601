"""NUL and control characters in identity input: refused before any query, alike on every backend.

PostgreSQL cannot store or compare a NUL in text (psycopg raises DataError), SQLite can: without the
checks, the same request was a 500 on one and a success on the other.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD, Callers, World

V3 = "/identity/v3"
NUL = "al\x00ice"


def _password(user: dict[str, Any], scope: Any = None) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "identity": {"methods": ["password"], "password": {"user": {**user, "password": PASSWORD}}}
    }
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


@pytest.mark.parametrize(
    "user",
    [
        {"name": NUL, "domain": {"id": "default"}},
        {"name": "alice", "domain": {"id": "def\x00ault"}},
        {"name": "alice", "domain": {"name": "Def\x00ault"}},
        {"id": "\x00"},
    ],
)
def test_nul_in_auth_user_is_unauthorized(api: Callers, user: dict[str, Any]) -> None:
    response = api.anonymous.client.post(f"{V3}/auth/tokens", json=_password(user))
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Keystone uri=")


@pytest.mark.parametrize(
    "scope",
    [
        {"project": {"id": "alp\x00ha"}},
        {"project": {"name": "alp\x00ha", "domain": {"id": "default"}}},
        {"domain": {"name": "Def\x00ault"}},
    ],
)
def test_nul_in_auth_scope_is_unauthorized(api: Callers, scope: dict[str, Any]) -> None:
    body = _password({"name": "alice", "domain": {"id": "default"}}, scope)
    assert api.anonymous.client.post(f"{V3}/auth/tokens", json=body).status_code == 401


def test_non_string_user_id_is_bad_request(api: Callers) -> None:
    response = api.anonymous.client.post(f"{V3}/auth/tokens", json=_password({"id": 5}))
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("path", "kind", "entity"),
    [
        ("domains", "domain", {"name": NUL}),
        ("domains", "domain", {"name": "d", "description": "a\x00b"}),
        ("domains", "domain", {"name": "d", "id": "d\tx"}),
        ("projects", "project", {"name": NUL}),
        ("projects", "project", {"name": "p", "domain_id": "default\x00"}),
        ("users", "user", {"name": NUL}),
        ("users", "user", {"name": "u", "email": "u@\x00example.org"}),
        ("users", "user", {"name": "u", "default_project_id": "x\x1f"}),
        ("roles", "role", {"name": NUL}),
    ],
)
def test_control_characters_in_admin_creates(api: Callers, path: str, kind: str, entity: Any) -> None:
    response = api.admin.post(f"{V3}/{path}", json={kind: entity})
    assert response.status_code == 400, response.text
    assert "are not allowed" in response.json()["error"]["message"]
    listed = api.admin.get(f"{V3}/{path}").json()[f"{kind}s"]
    assert not [e for e in listed if e["name"] in (NUL, "d", "p", "u")]


def test_nul_in_update_is_bad_request(api: Callers, world: World) -> None:
    response = api.admin.patch_json(f"{V3}/users/{world.users['bob']}", {"user": {"name": "b\x00b"}})
    assert response.status_code == 400, response.text
    assert api.admin.get(f"{V3}/users/{world.users['bob']}").json()["user"]["name"] == "bob"


def test_other_control_characters_in_names_are_kept_as_keystone_keeps_them(api: Callers) -> None:
    response = api.admin.post(f"{V3}/domains", json={"domain": {"name": "tab\there"}})
    assert response.status_code == 201, response.text
    assert response.json()["domain"]["name"] == "tab\there"
