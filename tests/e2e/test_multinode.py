"""Several API nodes over one PostgreSQL database and one image store behave as one service."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import Server, shared_database, start_server, stop_server


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with shared_database("spyglass_nodes") as url:
        yield url


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[tuple[Server, Server]]:
    data_dir = tmp_path_factory.mktemp("nodes") / "data"
    env = {"SPYGLASS_DATABASE_URL": postgres_url}
    first = start_server(data_dir, env=env, log_name="node1.log")
    second = start_server(data_dir, env=env, log_name="node2.log")
    yield first, second
    stop_server(second)
    stop_server(first)


def _token(node: Server, cloud: str) -> str:
    auth = yaml.safe_load(node.clouds_yaml.read_text())["clouds"][cloud]["auth"]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "domain": {"name": auth["user_domain_name"]},
                        "password": auth["password"],
                    }
                },
            },
            "scope": {
                "project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}
            },
        }
    }
    response = httpx.post(f"{node.url}/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201
    return response.headers["X-Subject-Token"]


def _client(node: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=node.url, headers={"X-Auth-Token": token}, timeout=60)


def test_nodes_share_images_tokens_and_members(nodes: tuple[Server, Server]) -> None:
    first, second = nodes
    alice_token = _token(first, "spyglass-a")  # issued by node 1, used on node 2 below
    bob_token = _token(second, "spyglass-b")
    a1, a2 = _client(first, alice_token), _client(second, alice_token)
    b1, b2 = _client(first, bob_token), _client(second, bob_token)
    bob_project = b2.get("/identity/v3/auth/projects").json()["projects"][0]["id"]

    data = os.urandom(3 * 1024 * 1024 + 17)
    image = a1.post("/v2/images", json={"name": "n", "disk_format": "raw", "container_format": "bare"}).json()
    assert (
        a1.put(
            f"/v2/images/{image['id']}/file",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        ).status_code
        == 204
    )
    shown = a2.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active" and shown["checksum"] == hashlib.md5(data).hexdigest()
    assert image["id"] in {i["id"] for i in a2.get("/v2/images").json()["images"]}

    assert a2.post(f"/v2/images/{image['id']}/members", json={"member": bob_project}).status_code == 200
    assert (
        b1.put(f"/v2/images/{image['id']}/members/{bob_project}", json={"status": "accepted"}).status_code
        == 200
    )
    assert image["id"] in {i["id"] for i in b2.get("/v2/images").json()["images"]}
    assert b2.get(f"/v2/images/{image['id']}/file").content == data

    # A token revoked through one node is refused by the other within a second.
    assert (
        a1.request("DELETE", "/identity/v3/auth/tokens", headers={"X-Subject-Token": bob_token}).status_code
        == 403
    )
    assert (
        b1.request("DELETE", "/identity/v3/auth/tokens", headers={"X-Subject-Token": bob_token}).status_code
        == 204
    )
    _refused_within_a_second(b2, "/v2/images", 401)


def _refused_within_a_second(client: httpx.Client, path: str, refusal: int) -> None:
    """No request sent a second or more after the change may succeed (each worker of the node
    keeps its own cache: every request may reach another one)."""
    changed = time.monotonic()
    while True:
        sent = time.monotonic()
        status = client.get(path).status_code
        if status == refusal:
            break
        assert status == 200 and sent - changed < 1.0, (status, sent - changed)
        time.sleep(0.02)
    # And it stays refused, whichever worker answers.
    assert {client.get(path).status_code for _ in range(10)} == {refusal}


def _admin_token(node: Server) -> str:
    auth = yaml.safe_load(node.clouds_yaml.read_text())["clouds"]["spyglass-admin"]["auth"]
    user = {
        "name": auth["username"],
        "domain": {"name": auth["user_domain_name"]},
        "password": auth["password"],
    }
    scope = {"project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}}
    response = httpx.post(f"{node.url}/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def _new_member(admin: httpx.Client, name: str) -> tuple[str, str, str]:
    """A new project and its member user: (project id, user id, a token of the user's)."""
    project = admin.post("/identity/v3/projects", json={"project": {"name": name, "domain_id": "default"}})
    project_id = project.json()["project"]["id"]
    user = admin.post(
        "/identity/v3/users",
        json={"user": {"name": name, "domain_id": "default", "password": "pw-" + name}},
    )
    user_id = user.json()["user"]["id"]
    member = admin.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]["id"]
    granted = admin.put(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{member}")
    assert granted.status_code == 204
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user_id, "password": "pw-" + name}},
            },
            "scope": {"project": {"id": project_id}},
        }
    }
    response = httpx.post(f"{admin.base_url}/identity/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return project_id, user_id, response.headers["X-Subject-Token"]


@pytest.mark.parametrize(
    "change", ["token revoked", "user disabled", "project disabled", "role removed", "member removed"]
)
def test_a_refusal_on_one_node_reaches_the_other_within_a_second(
    nodes: tuple[Server, Server], change: str
) -> None:
    first, second = nodes
    admin1 = httpx.Client(base_url=first.url, headers={"X-Auth-Token": _admin_token(first)}, timeout=60)
    name = f"{change.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    project_id, user_id, token = _new_member(admin1, name)
    owner = _client(first, _token(first, "spyglass-a"))
    image_id = owner.post("/v2/images", json={"name": name, "visibility": "shared"}).json()["id"]
    assert owner.post(f"/v2/images/{image_id}/members", json={"member": project_id}).status_code == 200
    on_second = _client(second, token)
    for _ in range(10):  # remembered by the second node's workers
        assert on_second.get(f"/v2/images/{image_id}").status_code == 200
    refusal = 401
    if change == "token revoked":
        revoked = admin1.request("DELETE", "/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
        assert revoked.status_code == 204
    elif change == "user disabled":
        assert (
            admin1.patch(f"/identity/v3/users/{user_id}", json={"user": {"enabled": False}}).status_code
            == 200
        )
    elif change == "project disabled":
        disabled = admin1.patch(f"/identity/v3/projects/{project_id}", json={"project": {"enabled": False}})
        assert disabled.status_code == 200
    elif change == "role removed":
        member = admin1.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]["id"]
        removed = admin1.delete(f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{member}")
        assert removed.status_code == 204
    else:
        assert owner.delete(f"/v2/images/{image_id}/members/{project_id}").status_code == 204
        refusal = 404
    _refused_within_a_second(on_second, f"/v2/images/{image_id}", refusal)


def test_racing_uploads_through_two_nodes_activate_once(nodes: tuple[Server, Server]) -> None:
    first, second = nodes
    token = _token(first, "spyglass-a")
    clients = [_client(first, token), _client(second, token)]
    image_id = (
        clients[0]
        .post("/v2/images", json={"name": "race", "disk_format": "raw", "container_format": "bare"})
        .json()["id"]
    )
    bodies = [os.urandom(2 * 1024 * 1024) for _ in range(6)]
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def upload(i: int) -> None:
        response = clients[i % 2].put(
            f"/v2/images/{image_id}/file",
            content=bodies[i],
            headers={"Content-Type": "application/octet-stream"},
        )
        with lock:
            results.append((response.status_code, bodies[i]))

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses.count(204) == 1 and set(statuses) <= {204, 409}, statuses
    winner = next(body for status, body in results if status == 204)
    final: dict[str, Any] = clients[1].get(f"/v2/images/{image_id}").json()
    assert final["status"] == "active" and final["checksum"] == hashlib.md5(winner).hexdigest()
    assert clients[0].get(f"/v2/images/{image_id}/file").content == winner


def test_concurrent_member_updates_through_two_nodes_lose_nothing(nodes: tuple[Server, Server]) -> None:
    first, second = nodes
    owner = _client(first, _token(first, "spyglass-a"))
    bob_token = _token(second, "spyglass-b")
    bobs = [_client(first, bob_token), _client(second, bob_token)]
    bob_project = bobs[0].get("/identity/v3/auth/projects").json()["projects"][0]["id"]
    image_ids = [owner.post("/v2/images", json={"name": f"m{i}"}).json()["id"] for i in range(8)]
    errors: list[str] = []

    def work(i: int) -> None:
        # Owner adds a member through node 1 while bob accepts through either node.
        image_id = image_ids[i]
        added = owner.post(f"/v2/images/{image_id}/members", json={"member": bob_project})
        if added.status_code != 200:
            errors.append(f"add {added.status_code}")
        for n in range(6):
            status = ("accepted", "rejected")[n % 2]
            response = bobs[n % 2].put(
                f"/v2/images/{image_id}/members/{bob_project}", json={"status": status}
            )
            if response.status_code != 200:
                errors.append(f"update {response.status_code}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(image_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Each image saw its six updates in order: the last one (rejected) is what both nodes report.
    for image_id in image_ids:
        for client in bobs:
            assert client.get(f"/v2/images/{image_id}/members/{bob_project}").json()["status"] == "rejected"


def test_workers_option_serves_from_several_processes(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--workers", "2")
    try:
        token = _token(server, "spyglass-a")
        client = _client(server, token)
        failures: list[int] = []

        def create_and_upload(i: int) -> None:
            image = client.post(
                "/v2/images", json={"name": f"w{i}", "disk_format": "raw", "container_format": "bare"}
            )
            upload = client.put(
                f"/v2/images/{image.json()['id']}/file",
                content=os.urandom(65536),
                headers={"Content-Type": "application/octet-stream"},
            )
            failures.extend(r.status_code for r in (image, upload) if r.status_code >= 500)

        threads = [threading.Thread(target=create_and_upload, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        listed = client.get("/v2/images?limit=100").json()["images"]
        assert sorted(i["status"] for i in listed) == ["active"] * 16
        pids = subprocess.run(
            ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(pids) >= 2
    finally:
        stop_server(server)
