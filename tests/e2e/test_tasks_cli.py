"""Tasks against a real `spyglass serve`: `openstack image task list|show` (admin, as Glance's
tasks_api_access wants), python-glanceclient's tasks.create / tasks.list, and the task an
`openstack image import --method web-download` leaves on its image."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.clients import glance, sdk
from tests.e2e.conftest import Server, start_server, stop_server
from tests.http_source import HttpSource, http_source

A, ADMIN = "spyglass-a", "spyglass-admin"
DATA = b"an image made by a task " * 2048


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose web-download may reach this test's HTTP server on 127.0.0.1."""
    data_dir = tmp_path_factory.mktemp("tasks") / "data"
    running = start_server(data_dir, env={"SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.1/32"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def source() -> Iterator[HttpSource]:
    with http_source() as running:
        yield running


def shown_when_ended(server: Server, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        task: dict[str, Any] = server.openstack_json(ADMIN, "image", "task", "show", task_id)
        if task["status"] in ("success", "failure") or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


def test_a_task_created_with_glanceclient_shows_in_the_cli(local: Server, source: HttpSource) -> None:
    client = glance(local, ADMIN)
    uri = source.serve("/task.raw", DATA)
    task_input = {
        "import_from": uri,
        "import_from_format": "raw",
        "image_properties": {"name": "made-by-task", "disk_format": "raw", "container_format": "bare"},
    }
    created = client.tasks.create(type="import", input=task_input)
    assert created.status == "pending"
    task = shown_when_ended(local, created.id)
    assert (task["id"], task["type"], task["status"]) == (created.id, "import", "success")
    image_id = task["result"]["image_id"]
    assert task["input"]["import_from"] == uri
    assert task["expires_at"]
    image = local.openstack_json(ADMIN, "image", "show", image_id)
    assert (image["name"], image["status"], image["size"]) == ("made-by-task", "active", len(DATA))
    listed = local.openstack_json(ADMIN, "image", "task", "list")
    assert [(t["ID"], t["Type"], t["Status"]) for t in listed] == [(created.id, "import", "success")]
    assert [t.id for t in client.tasks.list()] == [created.id]


def test_a_task_whose_source_cannot_be_fetched_fails_with_a_message(local: Server) -> None:
    client = glance(local, ADMIN)
    task_input = {
        "import_from": "http://127.0.0.1:1/nothing",
        "import_from_format": "raw",
        "image_properties": {"disk_format": "raw", "container_format": "bare"},
    }
    created = client.tasks.create(type="import", input=task_input)
    task = shown_when_ended(local, created.id)
    assert task["status"] == "failure"
    assert "The download failed" in task["message"]
    failed = local.openstack_json(ADMIN, "image", "task", "list", "--status", "failure")
    assert created.id in [t["ID"] for t in failed]


def test_an_import_leaves_its_task_on_the_image(local: Server, source: HttpSource) -> None:
    # (An `image create` without --file would upload its stdin: create with the sdk.)
    created = sdk(local, A).image.create_image("imported", disk_format="raw", container_format="bare")
    image = {"id": created.id}
    uri = source.serve("/imported.raw", DATA)
    local.openstack(A, "image", "import", "--method", "web-download", "--uri", uri, image["id"])
    deadline = time.monotonic() + 60
    while local.openstack_json(A, "image", "show", image["id"])["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # glanceclient asks the versions document for v2.12 before it calls GET /v2/images/{id}/tasks.
    tasks = glance(local, A).images.get_associated_image_tasks(image["id"])["tasks"]
    assert [(t["type"], t["status"]) for t in tasks] == [("api_image_import", "success")]
    assert tasks[0]["image_id"] == image["id"]
    shown = local.openstack_json(ADMIN, "image", "task", "show", tasks[0]["id"])
    assert (shown["type"], shown["status"]) == ("api_image_import", "success")


def test_a_project_without_the_admin_role_may_not_use_the_tasks_api(local: Server) -> None:
    result = local.openstack(A, "image", "task", "list", check=False)
    assert result.returncode != 0
    assert "403" in result.stderr or "Forbidden" in result.stderr
