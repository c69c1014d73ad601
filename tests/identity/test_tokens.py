"""Identity API v3 discovery and tokens: authenticate, scope, validate, revoke, expire."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from spyglass.db.engine import Database
from spyglass.db.tables import projects, tokens
from tests.conftest import PASSWORD, Caller, Callers, World

V3 = "/identity/v3"


def _auth(
    user: dict[str, Any], password: str = PASSWORD, scope: Any = None, methods: Any = None
) -> dict[str, Any]:
    user = {**user, "password": password}
    auth: dict[str, Any] = {"identity": {"methods": methods or ["password"], "password": {"user": user}}}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


ALICE = {"name": "alice", "domain": {"id": "default"}}


def _token(client: TestClient, body: dict[str, Any], query: str = "") -> Any:
    return client.post(f"{V3}/auth/tokens{query}", json=body)


def test_version_discovery(client: TestClient) -> None:
    root = client.get("/identity/")
    assert root.status_code == 300
    (version,) = root.json()["versions"]["values"]
    assert version["id"] == "v3.14" and version["status"] == "stable"
    assert version["links"][0]["href"] == "http://127.0.0.1:9292/identity/v3/"
    v3 = client.get(V3)
    assert v3.status_code == 200
    assert v3.json()["version"]["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"
    assert v3.headers["x-openstack-request-id"].startswith("req-")


@pytest.mark.parametrize(
    "scope",
    [
        {"project": {"name": "alpha", "domain": {"id": "default"}}},
        {"project": {"name": "alpha", "domain": {"name": "Default"}}},
        "PROJECT_ID",
    ],
)
def test_password_token_scoped_to_a_project(client: TestClient, world: World, scope: Any) -> None:
    if scope == "PROJECT_ID":
        scope = {"project": {"id": world.projects["alpha"]}}
    response = _token(client, _auth(ALICE, scope=scope))
    assert response.status_code == 201
    assert len(response.headers["X-Subject-Token"]) >= 40
    token = response.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"] == {
        "id": world.users["alice"],
        "name": "alice",
        "domain": {"id": "default", "name": "Default"},
        "password_expires_at": None,
    }
    assert token["project"] == {
        "id": world.projects["alpha"],
        "name": "alpha",
        "domain": {"id": "default", "name": "Default"},
    }
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]  # member implies reader
    issued = datetime.fromisoformat(token["issued_at"].rstrip("Z"))
    assert datetime.fromisoformat(token["expires_at"].rstrip("Z")) - issued == timedelta(days=1)
    catalog = {s["type"]: s for s in token["catalog"]}
    assert {e["interface"] for e in catalog["image"]["endpoints"]} == {"public", "internal", "admin"}
    image_endpoint = catalog["image"]["endpoints"][0]
    assert (
        image_endpoint["url"] == "http://127.0.0.1:9292/image" and image_endpoint["region_id"] == "RegionOne"
    )
    assert catalog["identity"]["endpoints"][0]["url"] == "http://127.0.0.1:9292/identity/v3/"


def test_user_by_id_unscoped_and_default_project(client: TestClient, world: World) -> None:
    by_id = _token(client, _auth({"id": world.users["alice"]}))
    # No scope asked: the user's default project is used, as Keystone does.
    assert by_id.json()["token"]["project"]["id"] == world.projects["alpha"]
    unscoped = _token(client, _auth({"id": world.users["alice"]}, scope="unscoped")).json()["token"]
    assert "project" not in unscoped and "catalog" not in unscoped and "roles" not in unscoped
    nocatalog = _token(client, _auth(ALICE), "?nocatalog").json()["token"]
    assert "catalog" not in nocatalog and nocatalog["roles"]


@pytest.mark.parametrize(
    "body",
    [
        _auth(ALICE, password="wrong"),
        _auth({"name": "nobody", "domain": {"id": "default"}}),
        _auth({"name": "alice", "domain": {"id": "no-such-domain"}}),
        _auth({"name": "carol", "domain": {"id": "default"}}),  # carol lives in another domain
        _auth(ALICE, scope={"project": {"name": "beta", "domain": {"id": "default"}}}),  # no role on beta
        _auth(ALICE, scope={"project": {"id": "no-such-project"}}),
        _auth(ALICE, methods=["totp"]),
    ],
)
def test_bad_credentials_and_forbidden_scopes_are_401(client: TestClient, body: dict[str, Any]) -> None:
    response = _token(client, body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:9292/identity"'
    error = response.json()["error"]
    assert error["code"] == 401 and error["title"] == "Unauthorized"
    assert "X-Subject-Token" not in response.headers


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"auth": []},
        {"auth": {"identity": {}}},
        {"auth": {"identity": {"methods": ["password"], "password": {}}}},
    ],
)
def test_malformed_auth_requests_are_400(client: TestClient, body: dict[str, Any]) -> None:
    response = _token(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        f"{V3}/auth/tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_disabled_project_cannot_be_scoped(client: TestClient, world: World, db: Database) -> None:
    with db.write() as conn:
        conn.execute(update(projects).where(projects.c.id == world.projects["alpha"]).values(enabled=False))
    assert _token(client, _auth(ALICE, scope={"project": {"id": world.projects["alpha"]}})).status_code == 401


def test_token_method_rescopes_without_extending_life(client: TestClient, world: World) -> None:
    unscoped = _token(client, _auth(ALICE, scope="unscoped"))
    secret = unscoped.headers["X-Subject-Token"]
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": secret}},
            "scope": {"project": {"id": world.projects["alpha"]}},
        }
    }
    rescoped = _token(client, body)
    assert rescoped.status_code == 201
    token = rescoped.json()["token"]
    assert token["project"]["id"] == world.projects["alpha"]
    assert token["expires_at"] <= unscoped.json()["token"]["expires_at"]
    assert sorted(token["methods"]) == ["password", "token"]
    forged = {"auth": {"identity": {"methods": ["token"], "token": {"id": secret + "x"}}}}
    assert _token(client, forged).status_code == 401


def test_validate_check_and_revoke(api: Callers, client: TestClient, world: World) -> None:
    fresh = _token(client, _auth(ALICE)).headers["X-Subject-Token"]
    alice = Caller(client, fresh)
    own = alice.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": fresh})
    assert own.status_code == 200 and own.headers["X-Subject-Token"] == fresh
    assert own.json()["token"]["user"]["name"] == "alice"
    assert alice.request("HEAD", f"{V3}/auth/tokens", headers={"X-Subject-Token": fresh}).status_code == 200
    # Another user's token: only an admin may look at it.
    assert api.bob.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": fresh}).status_code == 403
    assert api.admin.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": fresh}).status_code == 200
    assert api.admin.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": "nonsense"}).status_code == 404
    assert alice.get("/v2/images").status_code == 200

    assert api.admin.delete(f"{V3}/auth/tokens", headers={"X-Subject-Token": fresh}).status_code == 204
    assert alice.get("/v2/images").status_code == 401
    assert api.admin.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": fresh}).status_code == 404


def test_expired_tokens_are_refused(api: Callers, client: TestClient, db: Database) -> None:
    fresh = _token(client, _auth(ALICE)).headers["X-Subject-Token"]
    with db.write() as conn:
        digest = hashlib.sha256(fresh.encode()).hexdigest()
        conn.execute(
            update(tokens).where(tokens.c.token_hash == digest).values(expires_at=datetime(2020, 1, 1))
        )
    response = Caller(client, fresh).get("/v2/images")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The request you have made requires authentication."


def test_only_a_hash_of_the_token_is_stored(client: TestClient, db: Database) -> None:
    fresh = _token(client, _auth(ALICE)).headers["X-Subject-Token"]
    with db.read() as conn:
        stored = list(conn.execute(select(tokens)).mappings())
    assert stored and all(fresh not in str(dict(row).values()) for row in stored)


def test_requests_without_or_with_a_bad_token_are_401(client: TestClient) -> None:
    for headers in ({}, {"X-Auth-Token": "garbage"}):
        response = client.get("/v2/images", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Keystone uri=")


def test_catalog_endpoint(api: Callers) -> None:
    response = api.alice.get(f"{V3}/auth/catalog")
    assert response.status_code == 200
    assert {s["type"] for s in response.json()["catalog"]} == {"identity", "image"}


def test_bare_prefixes_answer_without_a_redirect(client: TestClient) -> None:
    identity = client.get("/identity", follow_redirects=False)
    assert identity.status_code == 300
    assert (
        identity.json()["versions"]["values"][0]["links"][0]["href"] == "http://127.0.0.1:9292/identity/v3/"
    )
    image = client.get("/image", follow_redirects=False)
    assert image.status_code == 300
    assert image.json()["versions"][0]["links"][0]["href"] == "http://127.0.0.1:9292/image/v2/"
