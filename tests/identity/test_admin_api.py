"""The Identity v3 administrative API: status codes, body shapes, policy and revocation effects."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Connection, select
from starlette.testclient import TestClient

from spyglass.db.tables import projects
from spyglass.errors import Conflict
from spyglass.identity import directory
from tests.conftest import PASSWORD, Caller, Callers, World

V3 = "/identity/v3"
BASE = "http://127.0.0.1:9292/identity/v3"
FORBIDDEN = "You are not authorized to perform the requested action: identity:{}."
UUID_HEX = re.compile(r"^[0-9a-f]{32}$")
# The project fields of 71-keystone-projects-by-name.http.
PROJECT_FIELDS = {
    "id",
    "name",
    "domain_id",
    "description",
    "enabled",
    "parent_id",
    "is_domain",
    "tags",
    "options",
    "links",
}


def create(caller: Caller, kind: str, **fields: Any) -> dict[str, Any]:
    response = caller.post(f"{V3}/{kind}s", json={kind: fields})
    assert response.status_code == 201, response.text
    entity: dict[str, Any] = response.json()[kind]
    return entity


def patch(caller: Caller, url: str, body: Any) -> Any:
    return caller.request("PATCH", url, json=body)


def head(caller: Caller, url: str) -> int:
    status: int = caller.request("HEAD", url).status_code
    return status


def login(
    client: TestClient, user: str, password: str = PASSWORD, user_domain: str = "default", **scope: Any
) -> Any:
    """POST /v3/auth/tokens with a password; scope is project={"id": ...} or domain={"id": ...}."""
    identity = {
        "methods": ["password"],
        "password": {"user": {"name": user, "domain": {"id": user_domain}, "password": password}},
    }
    auth: dict[str, Any] = {"identity": identity, **({"scope": scope} if scope else {})}
    return client.post(f"{V3}/auth/tokens", json={"auth": auth})


def session(client: TestClient, user: str, password: str = PASSWORD, **scope: Any) -> Caller:
    response = login(client, user, password, **scope)
    assert response.status_code == 201, response.text
    return Caller(client, response.headers["X-Subject-Token"])


def token_works(caller: Caller) -> bool:
    status = caller.get(f"{V3}/auth/projects").status_code
    assert status in (200, 401)
    return bool(status == 200)


def token_roles(caller: Caller) -> list[str]:
    token = caller.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": caller.token}).json()["token"]
    return sorted(r["name"] for r in token["roles"])


def error(response: Any) -> str:
    message: str = response.json()["error"]["message"]
    return message


def role_ids(api: Callers) -> dict[str, str]:
    return {r["name"]: r["id"] for r in api.admin.get(f"{V3}/roles").json()["roles"]}


def domain_id(api: Callers, name: str) -> str:
    found: str = api.admin.get(f"{V3}/domains?name={name}").json()["domains"][0]["id"]
    return found


@pytest.fixture
def hook_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Record the project hooks, checking that each runs while the project row is still there."""
    calls: dict[str, list[str]] = {"deleted": [], "disabled": []}

    def recorder(kind: str) -> directory.ProjectHook:
        def hook(conn: Connection, project_id: str) -> None:
            assert conn.execute(select(projects.c.id).where(projects.c.id == project_id)).scalar()
            calls[kind].append(project_id)

        return hook

    monkeypatch.setattr(directory, "project_deleted_hooks", [recorder("deleted")])
    monkeypatch.setattr(directory, "project_disabled_hooks", [recorder("disabled")])
    return calls


# ---- domains ----------------------------------------------------------------------------------


def test_domain_create_show_list_update_delete(api: Callers) -> None:
    domain = create(api.admin, "domain", name="acme", description="Acme Inc")
    assert UUID_HEX.match(domain["id"])
    assert domain == {
        "id": domain["id"],
        "name": "acme",
        "description": "Acme Inc",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": {"self": f"{BASE}/domains/{domain['id']}"},
    }
    url = f"{V3}/domains/{domain['id']}"
    assert api.admin.get(url).json() == {"domain": domain}

    listed = api.admin.get(f"{V3}/domains?name=acme").json()
    assert [d["id"] for d in listed["domains"]] == [domain["id"]]
    assert listed["links"] == {"self": f"{BASE}/domains?name=acme", "previous": None, "next": None}
    assert {d["name"] for d in api.admin.get(f"{V3}/domains").json()["domains"]} == {
        "Default",
        "other",
        "acme",
    }

    changed = patch(api.admin, url, {"domain": {"name": "acme2", "description": "new"}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["domain"]["name"], changed.json()["domain"]["description"]) == ("acme2", "new")

    refused = api.admin.delete(url)
    assert refused.status_code == 403
    assert error(refused) == "Cannot delete a domain that is enabled, please disable it first."

    assert patch(api.admin, url, {"domain": {"enabled": False}}).json()["domain"]["enabled"] is False
    assert [d["name"] for d in api.admin.get(f"{V3}/domains?enabled=false").json()["domains"]] == ["acme2"]
    assert "acme2" not in {d["name"] for d in api.admin.get(f"{V3}/domains?enabled=true").json()["domains"]}
    assert api.admin.delete(url).status_code == 204
    missing = api.admin.get(url)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": 404, "message": f"Could not find domain: {domain['id']}.", "title": "Not Found"}
    }
    assert api.admin.delete(url).status_code == 404


def test_domain_names_are_unique(api: Callers) -> None:
    create(api.admin, "domain", name="acme")
    other = create(api.admin, "domain", name="zenith")
    assert api.admin.post(f"{V3}/domains", json={"domain": {"name": "acme"}}).status_code == 409
    assert patch(api.admin, f"{V3}/domains/{other['id']}", {"domain": {"name": "acme"}}).status_code == 409
    # Renaming to its own name is no conflict.
    assert patch(api.admin, f"{V3}/domains/{other['id']}", {"domain": {"name": "zenith"}}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"name": "x"},
        {"domain": "x"},
        {"domain": {}},
        {"domain": {"name": ""}},
        {"domain": {"name": "   "}},
        {"domain": {"name": 5}},
        {"domain": {"name": "x" * 65}},
        {"domain": {"name": "x", "enabled": "yes"}},
        {"domain": {"name": "x", "colour": "red"}},
        {"domain": {"name": "x", "options": {"immutable": True}}},
        {"domain": {"name": "x", "tags": ["a"]}},
    ],
)
def test_domain_bad_bodies(api: Callers, body: Any) -> None:
    response = api.admin.post(f"{V3}/domains", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["title"] == "Bad Request"


def test_bad_body_messages_name_the_field(api: Callers) -> None:
    response = api.admin.post(f"{V3}/domains", json={"domain": {"name": "x", "enabled": "yes"}})
    assert error(response) == "Invalid input for field 'enabled': 'yes' is not of type 'boolean'"
    response = api.admin.post(f"{V3}/domains", json={"domain": {"name": "x", "options": {"immutable": True}}})
    assert error(response) == "Invalid input for field 'options': Resource options are not supported."
    response = api.admin.post(f"{V3}/domains", json={"project": {"name": "x"}})
    assert error(response) == "Expecting to find domain in request body."


def test_malformed_json_and_unknown_ids(api: Callers) -> None:
    bad = api.admin.post(f"{V3}/domains", content=b"{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    for kind in ("domain", "project", "user", "role"):
        url = f"{V3}/{kind}s/0123456789abcdef0123456789abcdef"
        assert api.admin.get(url).status_code == 404
        assert api.admin.delete(url).status_code == 404
        patched = patch(api.admin, url, {kind: {"description": "x"}})
        assert patched.status_code == 404
        assert error(patched) == f"Could not find {kind}: 0123456789abcdef0123456789abcdef."


def test_unauthenticated_and_wrong_method(api: Callers) -> None:
    for url in ("/domains", "/projects", "/users", "/roles", "/role_assignments", "/auth/projects"):
        response = api.anonymous.get(V3 + url)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Keystone uri=")
    assert api.anonymous.post(f"{V3}/domains", content=b"{nope").status_code == 401
    assert api.admin.put(f"{V3}/domains", json={}).status_code == 405


def test_default_domain_cannot_be_disabled(api: Callers) -> None:
    response = patch(api.admin, f"{V3}/domains/default", {"domain": {"enabled": False}})
    assert response.status_code == 403
    assert token_works(api.alice)


def test_disabling_a_domain_stops_its_tokens_for_good(
    api: Callers, world: World, client: TestClient, hook_calls: dict[str, list[str]]
) -> None:
    other = domain_id(api, "other")
    assert token_works(api.carol)
    patch(api.admin, f"{V3}/domains/{other}", {"domain": {"enabled": False}})
    assert not token_works(api.carol)
    assert token_works(api.alice)
    assert hook_calls["disabled"] == [world.projects["gamma"]]
    assert login(client, "carol", user_domain=other).status_code == 401

    patch(api.admin, f"{V3}/domains/{other}", {"domain": {"enabled": True}})
    assert not token_works(api.carol)  # revoked, not merely suspended
    assert login(client, "carol", user_domain=other).status_code == 201


def test_deleting_a_domain_takes_its_projects_and_users(
    api: Callers, world: World, hook_calls: dict[str, list[str]]
) -> None:
    other = domain_id(api, "other")
    patch(api.admin, f"{V3}/domains/{other}", {"domain": {"enabled": False}})
    assert api.admin.delete(f"{V3}/domains/{other}").status_code == 204
    assert hook_calls["deleted"] == [world.projects["gamma"]]
    assert api.admin.get(f"{V3}/projects/{world.projects['gamma']}").status_code == 404
    assert api.admin.get(f"{V3}/users/{world.users['carol']}").status_code == 404
    assert not token_works(api.carol)


def test_domain_policy(api: Callers) -> None:
    assert api.alice.get(f"{V3}/domains").status_code == 403
    assert error(api.alice.get(f"{V3}/domains/default")) == FORBIDDEN.format("get_domain")
    assert api.alice.post(f"{V3}/domains", json={"domain": {"name": "mine"}}).status_code == 403
    assert patch(api.alice, f"{V3}/domains/default", {"domain": {"description": "x"}}).status_code == 403
    assert api.alice.delete(f"{V3}/domains/default").status_code == 403


# ---- projects ---------------------------------------------------------------------------------


def test_project_create_show_list_update_delete(api: Callers) -> None:
    other = domain_id(api, "other")
    project = create(api.admin, "project", name="delta", domain_id=other, description="D")
    assert set(project) == PROJECT_FIELDS
    assert UUID_HEX.match(project["id"])
    assert project["parent_id"] == other
    assert (project["is_domain"], project["enabled"], project["tags"], project["options"]) == (
        False,
        True,
        [],
        {},
    )
    url = f"{V3}/projects/{project['id']}"
    assert project["links"] == {"self": f"{BASE}/projects/{project['id']}"}
    assert api.admin.get(url).json() == {"project": project}

    # The same name in another domain is another project.
    same_name = create(api.admin, "project", name="delta")
    assert same_name["domain_id"] == "default"  # the domain of the caller's project
    assert api.admin.post(f"{V3}/projects", json={"project": {"name": "delta"}}).status_code == 409

    by_name = api.admin.get(f"{V3}/projects?name=delta").json()["projects"]
    assert {p["id"] for p in by_name} == {project["id"], same_name["id"]}
    by_domain = api.admin.get(f"{V3}/projects?domain_id={other}").json()["projects"]
    assert {p["name"] for p in by_domain} == {"delta", "gamma"}

    changed = patch(api.admin, url, {"project": {"name": "delta2", "enabled": False, "description": None}})
    assert changed.status_code == 200, changed.text
    body = changed.json()["project"]
    assert (body["name"], body["enabled"], body["description"]) == ("delta2", False, "")
    assert [p["name"] for p in api.admin.get(f"{V3}/projects?enabled=0").json()["projects"]] == ["delta2"]
    assert api.admin.get(f"{V3}/projects?enabled=maybe").status_code == 400

    assert api.admin.delete(url).status_code == 204
    assert api.admin.get(url).status_code == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "p", "domain_id": "nowhere"}, "Could not find domain: nowhere."),
        ({"name": "p", "parent_id": "f" * 32}, "Invalid input for field 'parent_id': Project hierarchies"),
        ({"name": "p", "is_domain": True}, "Invalid input for field 'is_domain': Projects acting as domains"),
        ({"name": "p", "tags": ["x"]}, "Invalid input for field 'tags': Tags are not supported."),
        ({"name": "p" * 65}, "Invalid input for field 'name'"),
    ],
)
def test_project_create_errors(api: Callers, fields: dict[str, Any], message: str) -> None:
    response = api.admin.post(f"{V3}/projects", json={"project": fields})
    assert response.status_code == 400
    assert error(response).startswith(message)


def test_project_parent_may_be_its_domain(api: Callers) -> None:
    project = create(
        api.admin, "project", name="p", domain_id="default", parent_id="default", is_domain=False
    )
    assert project["parent_id"] == "default"


def test_a_project_cannot_move_domain(api: Callers, world: World) -> None:
    url = f"{V3}/projects/{world.projects['beta']}"
    response = patch(api.admin, url, {"project": {"domain_id": domain_id(api, "other")}})
    assert response.status_code == 400
    assert error(response) == "Update of `domain_id` is not allowed."
    assert (
        patch(api.admin, url, {"project": {"domain_id": "default", "id": world.projects["beta"]}}).status_code
        == 200
    )
    assert patch(api.admin, url, {"project": {"id": "f" * 32}}).status_code == 400
    assert patch(api.admin, url, {"project": {"name": "alpha"}}).status_code == 409


def test_project_policy_for_non_admins(api: Callers, world: World) -> None:
    own = api.alice.get(f"{V3}/projects/{world.projects['alpha']}")
    assert own.status_code == 200
    assert own.json()["project"]["name"] == "alpha"
    # As in 72-keystone-project-show-nonadmin-other.http; an unknown id is refused the same way, so
    # the answer does not tell whether the project exists.
    for project_id in (world.projects["beta"], "0123456789abcdef0123456789abcdef"):
        other = api.alice.get(f"{V3}/projects/{project_id}")
        assert other.status_code == 403
        assert other.json() == {
            "error": {"code": 403, "message": FORBIDDEN.format("get_project"), "title": "Forbidden"}
        }
    assert error(api.alice.get(f"{V3}/projects")) == FORBIDDEN.format("list_projects")
    assert api.alice.post(f"{V3}/projects", json={"project": {"name": "x"}}).status_code == 403
    assert (
        patch(api.alice, f"{V3}/projects/{world.projects['alpha']}", {"project": {"name": "y"}}).status_code
        == 403
    )
    assert api.alice.delete(f"{V3}/projects/{world.projects['alpha']}").status_code == 403
    assert api.admin.get(f"{V3}/projects/{world.projects['alpha']}").status_code == 200


def test_deleting_a_project_calls_the_hook_and_stops_its_tokens(
    api: Callers, world: World, hook_calls: dict[str, list[str]]
) -> None:
    beta = world.projects["beta"]
    assert token_works(api.bob)
    assert api.admin.delete(f"{V3}/projects/{beta}").status_code == 204
    assert hook_calls["deleted"] == [beta]
    assert hook_calls["disabled"] == []
    assert not token_works(api.bob)
    # Bob keeps his account; his default project is gone with the project.
    assert api.admin.get(f"{V3}/users/{world.users['bob']}").json()["user"]["default_project_id"] is None
    assert token_works(api.alice)


def test_a_failing_hook_undoes_the_delete(
    api: Callers, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def veto(conn: Connection, project_id: str) -> None:
        raise Conflict(f"Project {project_id} still has images.")

    monkeypatch.setattr(directory, "project_deleted_hooks", [veto])
    beta = world.projects["beta"]
    response = api.admin.delete(f"{V3}/projects/{beta}")
    assert response.status_code == 409
    assert error(response) == f"Project {beta} still has images."
    assert api.admin.get(f"{V3}/projects/{beta}").status_code == 200
    assert token_works(api.bob)


def test_disabling_a_project_stops_its_tokens_for_good(
    api: Callers, world: World, client: TestClient, hook_calls: dict[str, list[str]]
) -> None:
    alpha = world.projects["alpha"]
    url = f"{V3}/projects/{alpha}"
    patch(api.admin, url, {"project": {"enabled": False}})
    assert hook_calls["disabled"] == [alpha]
    assert not token_works(api.alice)
    assert not token_works(api.rita)
    assert token_works(api.bob)
    assert login(client, "alice", project={"id": alpha}).status_code == 401

    patch(api.admin, url, {"project": {"enabled": False, "description": "still off"}})
    assert hook_calls["disabled"] == [alpha]  # only the change from enabled calls the hook
    patch(api.admin, url, {"project": {"enabled": True}})
    assert not token_works(api.alice)
    assert token_works(session(client, "alice", project={"id": alpha}))


# ---- users ------------------------------------------------------------------------------------


def test_user_create_show_list_update_delete(api: Callers, world: World, client: TestClient) -> None:
    user = create(
        api.admin,
        "user",
        name="dave",
        password="dave-password",
        email="dave@example.com",
        description="Dave",
        default_project_id=world.projects["beta"],
    )
    assert UUID_HEX.match(user["id"])
    assert user == {
        "id": user["id"],
        "name": "dave",
        "domain_id": "default",
        "email": "dave@example.com",
        "description": "Dave",
        "enabled": True,
        "default_project_id": world.projects["beta"],
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{BASE}/users/{user['id']}"},
    }
    url = f"{V3}/users/{user['id']}"
    assert api.admin.get(url).json() == {"user": user}
    assert login(client, "dave", "dave-password").status_code == 201

    assert [u["id"] for u in api.admin.get(f"{V3}/users?name=dave").json()["users"]] == [user["id"]]
    assert {u["name"] for u in api.admin.get(f"{V3}/users?domain_id=default").json()["users"]} == {
        "admin",
        "alice",
        "bob",
        "rita",
        "dave",
    }
    assert api.admin.post(f"{V3}/users", json={"user": {"name": "dave"}}).status_code == 409
    create(api.admin, "user", name="dave", domain_id=domain_id(api, "other"))  # another domain: fine

    changed = patch(api.admin, url, {"user": {"email": "d@example.org", "enabled": False}})
    assert changed.status_code == 200
    assert (changed.json()["user"]["email"], changed.json()["user"]["enabled"]) == ("d@example.org", False)
    assert [u["name"] for u in api.admin.get(f"{V3}/users?enabled=false").json()["users"]] == ["dave"]

    assert api.admin.delete(url).status_code == 204
    assert api.admin.get(url).status_code == 404
    assert login(client, "dave", "dave-password").status_code == 401


def test_a_user_without_password_cannot_log_in(api: Callers, client: TestClient) -> None:
    create(api.admin, "user", name="nopass")
    assert login(client, "nopass", "").status_code == 401


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "u", "domain_id": "nowhere"}, "Could not find domain: nowhere."),
        ({"name": "u", "default_project_id": "nowhere"}, "Could not find project: nowhere."),
        ({"name": ""}, "Invalid input for field 'name'"),
        ({"name": "u", "password": 1234}, "Invalid input for field 'password'"),
        ({"name": "u", "email": ["a"]}, "Invalid input for field 'email'"),
    ],
)
def test_user_create_errors(api: Callers, fields: dict[str, Any], message: str) -> None:
    response = api.admin.post(f"{V3}/users", json={"user": fields})
    assert response.status_code == 400
    assert error(response).startswith(message)


def test_password_hashes_are_never_returned(api: Callers, world: World) -> None:
    created = api.admin.post(f"{V3}/users", json={"user": {"name": "eve", "password": "eve-password"}})
    responses = [
        created,
        api.admin.get(f"{V3}/users"),
        api.admin.get(f"{V3}/users/{world.users['alice']}"),
        api.alice.get(f"{V3}/users/{world.users['alice']}"),
        patch(api.admin, f"{V3}/users/{world.users['bob']}", {"user": {"password": "new-password"}}),
    ]
    for response in responses:
        assert response.status_code in (200, 201)
        assert "password_hash" not in response.text
        assert "argon2" not in response.text
        assert '"password"' not in response.text


def test_changing_a_password_revokes_the_users_tokens(api: Callers, world: World, client: TestClient) -> None:
    url = f"{V3}/users/{world.users['alice']}"
    assert patch(api.admin, url, {"user": {"name": "alice", "description": "unchanged"}}).status_code == 200
    assert token_works(api.alice)  # other changes keep tokens
    assert patch(api.admin, url, {"user": {"password": "another-password"}}).status_code == 200
    assert not token_works(api.alice)
    assert token_works(api.rita)
    assert login(client, "alice").status_code == 401
    assert login(client, "alice", "another-password").status_code == 201


def test_disabling_or_deleting_a_user_stops_their_tokens(
    api: Callers, world: World, client: TestClient
) -> None:
    alice = f"{V3}/users/{world.users['alice']}"
    patch(api.admin, alice, {"user": {"enabled": False}})
    assert not token_works(api.alice)
    assert login(client, "alice").status_code == 401
    patch(api.admin, alice, {"user": {"enabled": True}})
    assert not token_works(api.alice)  # revoked, not merely suspended
    assert login(client, "alice").status_code == 201

    assert api.admin.delete(f"{V3}/users/{world.users['bob']}").status_code == 204
    assert not token_works(api.bob)
    assert token_works(api.rita)


def test_user_policy_for_non_admins(api: Callers, world: World) -> None:
    me = api.alice.get(f"{V3}/users/{world.users['alice']}")
    assert me.status_code == 200
    assert me.json()["user"]["name"] == "alice"
    assert error(api.alice.get(f"{V3}/users/{world.users['bob']}")) == FORBIDDEN.format("get_user")
    assert error(api.alice.get(f"{V3}/users")) == FORBIDDEN.format("list_users")
    assert api.alice.post(f"{V3}/users", json={"user": {"name": "x"}}).status_code == 403
    # Even their own account: renaming, re-enabling or moving users is for admins.
    assert patch(api.alice, f"{V3}/users/{world.users['alice']}", {"user": {"name": "y"}}).status_code == 403
    assert api.alice.delete(f"{V3}/users/{world.users['alice']}").status_code == 403


def test_users_change_their_own_password(api: Callers, world: World, client: TestClient) -> None:
    url = f"{V3}/users/{world.users['alice']}/password"
    wrong = api.alice.post(url, json={"user": {"original_password": "wrong", "password": "x-password"}})
    assert wrong.status_code == 401
    missing = api.alice.post(url, json={"user": {"password": "x-password"}})
    assert missing.status_code == 400
    changed = api.alice.post(url, json={"user": {"original_password": PASSWORD, "password": "x-password"}})
    assert changed.status_code == 204
    assert not token_works(api.alice)
    assert login(client, "alice", "x-password").status_code == 201
    others = api.bob.post(url, json={"user": {"original_password": PASSWORD, "password": "y-password"}})
    assert error(others) == FORBIDDEN.format("change_password")


def test_listing_a_users_projects(api: Callers, world: World) -> None:
    mine = api.alice.get(f"{V3}/users/{world.users['alice']}/projects")
    assert mine.status_code == 200
    assert [p["name"] for p in mine.json()["projects"]] == ["alpha"]
    assert mine.json()["links"]["self"] == f"{BASE}/users/{world.users['alice']}/projects"
    assert error(api.alice.get(f"{V3}/users/{world.users['bob']}/projects")) == FORBIDDEN.format(
        "list_user_projects"
    )
    assert [
        p["name"] for p in api.admin.get(f"{V3}/users/{world.users['bob']}/projects").json()["projects"]
    ] == ["beta"]
    assert api.admin.get(f"{V3}/users/{'0' * 32}/projects").status_code == 404


def test_auth_projects_and_domains(api: Callers, world: World) -> None:
    assert [p["name"] for p in api.alice.get(f"{V3}/auth/projects").json()["projects"]] == ["alpha"]
    assert api.alice.get(f"{V3}/auth/domains").json()["domains"] == []
    reader = role_ids(api)["reader"]
    granted = api.admin.put(f"{V3}/domains/default/users/{world.users['alice']}/roles/{reader}")
    assert granted.status_code == 204
    assert [d["id"] for d in api.alice.get(f"{V3}/auth/domains").json()["domains"]] == ["default"]
    # A disabled project is not offered for scoping.
    beta = world.projects["beta"]
    api.admin.put(f"{V3}/projects/{beta}/users/{world.users['alice']}/roles/{reader}")
    assert {p["name"] for p in api.alice.get(f"{V3}/auth/projects").json()["projects"]} == {"alpha", "beta"}
    patch(api.admin, f"{V3}/projects/{beta}", {"project": {"enabled": False}})
    assert [p["name"] for p in api.alice.get(f"{V3}/auth/projects").json()["projects"]] == ["alpha"]


# ---- roles ------------------------------------------------------------------------------------


def test_role_create_show_list_update_delete(api: Callers) -> None:
    role = create(api.admin, "role", name="auditor", description="Reads logs")
    assert UUID_HEX.match(role["id"])
    assert role == {
        "id": role["id"],
        "name": "auditor",
        "description": "Reads logs",
        "domain_id": None,
        "options": {},
        "links": {"self": f"{BASE}/roles/{role['id']}"},
    }
    url = f"{V3}/roles/{role['id']}"
    assert api.admin.get(url).json() == {"role": role}
    assert [r["id"] for r in api.admin.get(f"{V3}/roles?name=auditor").json()["roles"]] == [role["id"]]
    assert api.admin.post(f"{V3}/roles", json={"role": {"name": "auditor"}}).status_code == 409
    assert (
        api.admin.post(f"{V3}/roles", json={"role": {"name": "x", "domain_id": "default"}}).status_code == 400
    )
    assert patch(api.admin, url, {"role": {"name": "member"}}).status_code == 409
    assert patch(api.admin, url, {"role": {"name": "inspector"}}).json()["role"]["name"] == "inspector"
    assert api.admin.delete(url).status_code == 204
    assert api.admin.get(url).status_code == 404


def test_the_standard_roles_cannot_be_renamed_or_deleted(api: Callers) -> None:
    ids = role_ids(api)
    for name in ("admin", "member", "reader"):
        assert api.admin.delete(f"{V3}/roles/{ids[name]}").status_code == 403
        assert patch(api.admin, f"{V3}/roles/{ids[name]}", {"role": {"name": f"{name}2"}}).status_code == 403
    described = patch(api.admin, f"{V3}/roles/{ids['reader']}", {"role": {"description": "Looks"}})
    assert described.status_code == 200


def test_deleting_a_role_removes_its_assignments(api: Callers, world: World) -> None:
    role = create(api.admin, "role", name="auditor")
    alice = world.users["alice"]
    api.admin.put(f"{V3}/projects/{world.projects['alpha']}/users/{alice}/roles/{role['id']}")
    assert token_roles(api.alice) == ["auditor", "member", "reader"]
    assert api.admin.delete(f"{V3}/roles/{role['id']}").status_code == 204
    assert token_roles(api.alice) == ["member", "reader"]
    assert api.admin.get(f"{V3}/role_assignments?role.id={role['id']}").json()["role_assignments"] == []


def test_role_policy_for_non_admins(api: Callers) -> None:
    assert error(api.alice.get(f"{V3}/roles")) == FORBIDDEN.format("list_roles")
    assert api.alice.get(f"{V3}/roles/{role_ids(api)['member']}").status_code == 403
    assert api.alice.post(f"{V3}/roles", json={"role": {"name": "x"}}).status_code == 403
    assert api.alice.get(f"{V3}/role_inferences").status_code == 403


# ---- implied roles ----------------------------------------------------------------------------


def test_the_default_role_inferences(api: Callers) -> None:
    ids = role_ids(api)

    def ref(name: str) -> dict[str, Any]:
        return {"id": ids[name], "name": name, "links": {"self": f"{BASE}/roles/{ids[name]}"}}

    listed = api.admin.get(f"{V3}/role_inferences").json()
    assert listed["role_inferences"] == [
        {"prior_role": ref("admin"), "implies": [ref("member")]},
        {"prior_role": ref("member"), "implies": [ref("reader")]},
    ]
    implied = api.admin.get(f"{V3}/roles/{ids['admin']}/implies").json()
    assert implied["role_inference"] == {"prior_role": ref("admin"), "implies": [ref("member")]}
    assert api.admin.get(f"{V3}/roles/{ids['reader']}/implies").json()["role_inference"]["implies"] == []
    one = api.admin.get(f"{V3}/roles/{ids['admin']}/implies/{ids['member']}")
    assert one.json()["role_inference"] == {"prior_role": ref("admin"), "implies": ref("member")}
    assert head(api.admin, f"{V3}/roles/{ids['admin']}/implies/{ids['member']}") == 204
    # Only direct rules are rules: admin reaches reader through member.
    assert head(api.admin, f"{V3}/roles/{ids['admin']}/implies/{ids['reader']}") == 404
    assert api.admin.get(f"{V3}/roles/{'0' * 32}/implies").status_code == 404


def test_creating_and_deleting_an_implied_role(api: Callers, world: World) -> None:
    ids = role_ids(api)
    auditor = create(api.admin, "role", name="auditor")["id"]
    rule = f"{V3}/roles/{auditor}/implies/{ids['reader']}"
    created = api.admin.put(rule)
    assert created.status_code == 201
    assert created.json()["role_inference"]["implies"]["name"] == "reader"
    assert api.admin.put(rule).status_code == 201  # PUT again: the same rule

    beta = world.projects["beta"]
    alice = world.users["alice"]
    api.admin.put(f"{V3}/projects/{beta}/users/{alice}/roles/{auditor}")
    effective = api.admin.get(
        f"{V3}/role_assignments?user.id={alice}&scope.project.id={beta}&effective"
    ).json()
    assert {a["role"]["id"] for a in effective["role_assignments"]} == {auditor, ids["reader"]}

    assert api.admin.delete(rule).status_code == 204
    assert api.admin.delete(rule).status_code == 404
    effective = api.admin.get(
        f"{V3}/role_assignments?user.id={alice}&scope.project.id={beta}&effective"
    ).json()
    assert [a["role"]["id"] for a in effective["role_assignments"]] == [auditor]


def test_implied_roles_cannot_loop_or_grant_admin(api: Callers) -> None:
    ids = role_ids(api)
    cycle = api.admin.put(f"{V3}/roles/{ids['reader']}/implies/{ids['admin']}")
    assert cycle.status_code == 400
    loop = api.admin.put(f"{V3}/roles/{ids['reader']}/implies/{ids['member']}")
    assert loop.status_code == 400
    assert "cycle" in error(loop)
    assert api.admin.put(f"{V3}/roles/{ids['reader']}/implies/{ids['reader']}").status_code == 400
    assert api.admin.put(f"{V3}/roles/{ids['reader']}/implies/{'0' * 32}").status_code == 404
    assert api.alice.put(f"{V3}/roles/{ids['member']}/implies/{ids['reader']}").status_code == 403


# ---- grants -----------------------------------------------------------------------------------


def test_granting_checking_and_revoking_a_project_role(
    api: Callers, world: World, client: TestClient
) -> None:
    dave = create(api.admin, "user", name="dave", password="dave-password")["id"]
    member = role_ids(api)["member"]
    beta = world.projects["beta"]
    grant = f"{V3}/projects/{beta}/users/{dave}/roles/{member}"
    assert head(api.admin, grant) == 404
    assert login(client, "dave", "dave-password", project={"id": beta}).status_code == 401

    assert api.admin.put(grant).status_code == 204
    assert api.admin.put(grant).status_code == 204  # granting twice changes nothing
    assert head(api.admin, grant) == 204
    assert api.admin.get(grant).status_code == 204
    listed = api.admin.get(f"{V3}/projects/{beta}/users/{dave}/roles").json()
    assert [r["name"] for r in listed["roles"]] == ["member"]
    assert listed["links"]["self"] == f"{BASE}/projects/{beta}/users/{dave}/roles"
    as_dave = session(client, "dave", "dave-password", project={"id": beta})
    assert token_roles(as_dave) == ["member", "reader"]

    assert api.admin.delete(grant).status_code == 204
    assert api.admin.delete(grant).status_code == 404
    assert head(api.admin, grant) == 404
    assert not token_works(as_dave)  # no role left on the project


def test_grants_name_existing_things(api: Callers, world: World) -> None:
    member = role_ids(api)["member"]
    alice, beta, nothing = world.users["alice"], world.projects["beta"], "0" * 32
    for url in (
        f"{V3}/projects/{beta}/users/{alice}/roles/{nothing}",
        f"{V3}/projects/{beta}/users/{nothing}/roles/{member}",
        f"{V3}/projects/{nothing}/users/{alice}/roles/{member}",
        f"{V3}/domains/{nothing}/users/{alice}/roles/{member}",
    ):
        for method in ("PUT", "HEAD", "DELETE"):
            assert api.admin.request(method, url).status_code == 404, (method, url)
    assert api.admin.get(f"{V3}/projects/{nothing}/users/{alice}/roles").status_code == 404


def test_grant_policy(api: Callers, world: World) -> None:
    member = role_ids(api)["member"]
    alice, alpha, beta = world.users["alice"], world.projects["alpha"], world.projects["beta"]
    # Alice may check and list her own roles, not grant any or look at others'.
    assert head(api.alice, f"{V3}/projects/{alpha}/users/{alice}/roles/{member}") == 204
    assert api.alice.get(f"{V3}/projects/{alpha}/users/{alice}/roles").status_code == 200
    bob_grant = f"{V3}/projects/{beta}/users/{world.users['bob']}/roles/{member}"
    assert head(api.alice, bob_grant) == 403
    assert error(api.alice.put(f"{V3}/projects/{beta}/users/{alice}/roles/{member}")) == FORBIDDEN.format(
        "create_grant"
    )
    assert error(api.alice.delete(bob_grant)) == FORBIDDEN.format("revoke_grant")
    assert head(api.admin, bob_grant) == 204


def test_a_domain_role_gives_a_domain_scoped_token(api: Callers, world: World, client: TestClient) -> None:
    reader = role_ids(api)["reader"]
    alice = world.users["alice"]
    grant = f"{V3}/domains/default/users/{alice}/roles/{reader}"
    assert login(client, "alice", domain={"id": "default"}).status_code == 401
    assert api.admin.put(grant).status_code == 204
    assert head(api.admin, grant) == 204
    as_domain = session(client, "alice", domain={"id": "default"})
    assert token_roles(as_domain) == ["reader"]
    assert as_domain.get(f"{V3}/domains/default").status_code == 200  # their token's domain
    listed = api.admin.get(f"{V3}/role_assignments?scope.domain.id=default&include_names=1").json()
    assert listed["role_assignments"] == [
        {
            "links": {"assignment": f"{BASE}/domains/default/users/{alice}/roles/{reader}"},
            "scope": {"domain": {"id": "default", "name": "Default"}},
            "user": {"id": alice, "name": "alice", "domain": {"id": "default", "name": "Default"}},
            "role": {"id": reader, "name": "reader"},
        }
    ]
    assert api.admin.delete(grant).status_code == 204
    assert not token_works(as_domain)
    # A project grant is not a domain grant.
    assert head(api.admin, f"{V3}/domains/default/users/{alice}/roles/{role_ids(api)['member']}") == 404


def test_removing_a_role_takes_effect_on_the_next_request(api: Callers, world: World) -> None:
    ids = role_ids(api)
    alice, alpha = world.users["alice"], world.projects["alpha"]
    api.admin.put(f"{V3}/projects/{alpha}/users/{alice}/roles/{ids['reader']}")
    assert token_roles(api.alice) == ["member", "reader"]
    api.admin.delete(f"{V3}/projects/{alpha}/users/{alice}/roles/{ids['member']}")
    assert token_roles(api.alice) == ["reader"]
    api.admin.delete(f"{V3}/projects/{alpha}/users/{alice}/roles/{ids['reader']}")
    assert not token_works(api.alice)


# ---- role assignments -------------------------------------------------------------------------


def test_role_assignments_with_names_match_keystone(api: Callers, world: World) -> None:
    ids = role_ids(api)
    alpha, alice, rita = world.projects["alpha"], world.users["alice"], world.users["rita"]
    response = api.admin.get(f"{V3}/role_assignments?scope.project.id={alpha}&include_names=true")
    assert response.status_code == 200
    body = response.json()
    project = {"id": alpha, "name": "alpha", "domain": {"id": "default", "name": "Default"}}

    def row(user: str, name: str, role: str) -> dict[str, Any]:
        return {
            "links": {"assignment": f"{BASE}/projects/{alpha}/users/{user}/roles/{ids[role]}"},
            "scope": {"project": project},
            "user": {"id": user, "name": name, "domain": {"id": "default", "name": "Default"}},
            "role": {"id": ids[role], "name": role},
        }

    assert body["role_assignments"] == [row(alice, "alice", "member"), row(rita, "rita", "reader")]
    assert body["links"] == {
        "self": f"{BASE}/role_assignments?scope.project.id={alpha}&include_names=true",
        "previous": None,
        "next": None,
    }


def test_role_assignment_filters(api: Callers, world: World) -> None:
    ids = role_ids(api)

    def found(query: str) -> list[tuple[str, str, str]]:
        response = api.admin.get(f"{V3}/role_assignments?{query}")
        assert response.status_code == 200, response.text
        return [
            (a["user"]["id"], a["scope"]["project"]["id"], a["role"]["id"])
            for a in response.json()["role_assignments"]
        ]

    alice, bob, alpha, beta = (
        world.users["alice"],
        world.users["bob"],
        world.projects["alpha"],
        world.projects["beta"],
    )
    everything = found("")
    assert len(everything) == 5  # admin, alice, bob, carol, rita
    assert found(f"user.id={alice}") == [(alice, alpha, ids["member"])]
    assert found(f"scope.project.id={beta}") == [(bob, beta, ids["member"])]
    assert found(f"role.id={ids['reader']}") == [(world.users["rita"], alpha, ids["reader"])]
    assert found(f"user.id={alice}&scope.project.id={beta}") == []
    # Without names, each part carries its id only.
    plain = api.admin.get(f"{V3}/role_assignments?user.id={alice}").json()["role_assignments"][0]
    assert plain["user"] == {"id": alice}
    assert plain["scope"] == {"project": {"id": alpha}}
    assert plain["role"] == {"id": ids["member"]}
    # There are no groups, system scope or inherited roles, so asking for them finds nothing.
    for query in ("group.id=abc", "scope.system=all", "scope.OS-INHERIT:inherited_to=projects"):
        assert found(query) == []


def test_effective_role_assignments_add_implied_roles(api: Callers, world: World) -> None:
    ids = role_ids(api)
    alice, rita, alpha = world.users["alice"], world.users["rita"], world.projects["alpha"]
    url = f"{V3}/role_assignments?scope.project.id={alpha}&effective"
    rows = api.admin.get(url).json()["role_assignments"]
    assert {(a["user"]["id"], a["role"]["id"]) for a in rows} == {
        (alice, ids["member"]),
        (alice, ids["reader"]),
        (rita, ids["reader"]),
    }
    implied = next(a for a in rows if a["user"]["id"] == alice and a["role"]["id"] == ids["reader"])
    # The link points at the assignment that was made, and at the role that implies this one.
    assert implied["links"] == {
        "assignment": f"{BASE}/projects/{alpha}/users/{alice}/roles/{ids['member']}",
        "prior_role": f"{BASE}/roles/{ids['member']}",
    }
    readers = api.admin.get(f"{url}&role.id={ids['reader']}&include_names").json()["role_assignments"]
    assert sorted(a["user"]["name"] for a in readers) == ["alice", "rita"]
    # `effective=false` means not effective.
    not_effective = api.admin.get(f"{V3}/role_assignments?scope.project.id={alpha}&effective=false").json()
    assert len(not_effective["role_assignments"]) == 2


def test_admin_effective_roles_appear_once(api: Callers, world: World) -> None:
    admin_project = world.projects["admin"]
    rows = api.admin.get(f"{V3}/role_assignments?scope.project.id={admin_project}&effective&include_names")
    assert sorted(a["role"]["name"] for a in rows.json()["role_assignments"]) == ["admin", "member", "reader"]


def test_role_assignment_policy(api: Callers, world: World) -> None:
    alice = world.users["alice"]
    own = api.alice.get(f"{V3}/role_assignments?user.id={alice}&effective&include_names")
    assert own.status_code == 200
    assert {a["role"]["name"] for a in own.json()["role_assignments"]} == {"member", "reader"}
    assert error(api.alice.get(f"{V3}/role_assignments")) == FORBIDDEN.format("list_role_assignments")
    assert api.alice.get(f"{V3}/role_assignments?user.id={world.users['bob']}").status_code == 403
