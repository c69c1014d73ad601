"""spyglass.data.tasks and .task_imports: the tasks of imports, the tasks API and the image tasks call.

Expected shapes and messages are Glance 33's (glance/api/v2/tasks.py, images.py get_task_info, the
db API's task format, and the api-ref samples task-create-*, task-show-*, image-tasks-show-*).
Tasks run in the background: the tests poll until a task ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from spyglass.blobs import FilesystemStore
from spyglass.context import RequestContext
from spyglass.data import task_queries as tq
from spyglass.data import tasks
from spyglass.data.recovery import recover
from spyglass.db.engine import Database
from spyglass.images import policy
from spyglass.settings import Settings
from tests.api.helpers import create, md5, message
from tests.conftest import Caller, Callers, World, reconfigure
from tests.http_source import HttpSource, http_source

DATA = b"task image data " * 4096
UNREACHABLE = "http://127.0.0.1:1/nothing-listens-here"


@pytest.fixture
def source() -> Iterator[HttpSource]:
    with http_source() as running:
        yield running


@pytest.fixture
def local(api: Callers) -> None:
    """Let web-download reach the test's own HTTP server on 127.0.0.1."""
    reconfigure(api.alice.client, web_download_allowed_networks=("127.0.0.1/32",))


def ended(caller: Caller, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """The task once it has ended (success or failure)."""
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = caller.get(f"/v2/tasks/{task_id}").json()
        if task["status"] in ("success", "failure") or time.monotonic() > deadline:
            return task
        time.sleep(0.02)


def image_tasks_ended(caller: Caller, image_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        response = caller.get(f"/v2/images/{image_id}/tasks")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["tasks"]
        if all(t["status"] in ("success", "failure") for t in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def web_download(caller: Caller, image_id: str, uri: str) -> Any:
    body = {"method": {"name": "web-download", "uri": uri}}
    return caller.post(f"/v2/images/{image_id}/import", json=body)


def import_task(caller: Caller, uri: str, **properties: Any) -> Any:
    image_properties = {"disk_format": "raw", "container_format": "bare", **properties}
    body = {
        "type": "import",
        "input": {"import_from": uri, "import_from_format": "raw", "image_properties": image_properties},
    }
    return caller.post("/v2/tasks", json=body)


def _microseconds(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f")


# ---- the tasks of imports: GET /v2/images/{id}/tasks ---------------------------------------------------


@pytest.mark.usefixtures("local")
def test_a_web_download_import_is_a_task_of_the_image(api: Callers, world: World, source: HttpSource) -> None:
    image = create(api.alice)
    uri = source.serve("/disk.raw", DATA)
    response = web_download(api.alice, image["id"], uri)
    assert response.status_code == 202
    [task] = image_tasks_ended(api.alice, image["id"])
    # The fields of Glance's task rows (api-ref image-tasks-show-response.json, db _task_format).
    assert set(task) == {
        "id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "deleted_at",
        "deleted", "image_id", "request_id", "user_id", "input", "result", "message",
    }  # fmt: skip
    assert (task["type"], task["status"], task["message"]) == ("api_image_import", "success", "")
    assert task["owner"] == world.projects["alpha"]
    assert task["user_id"] == world.users["alice"]
    assert task["image_id"] == image["id"]
    assert task["request_id"] == response.headers["x-openstack-request-id"]
    assert task["input"] == {
        "image_id": image["id"],
        "import_req": {"method": {"name": "web-download", "uri": uri}},
        "backend": ["fs"],
    }
    assert task["result"] == {"image_id": image["id"]}
    assert (task["deleted"], task["deleted_at"]) == (False, None)
    # Glance's task_time_to_live (48 hours) from the end of the task.
    lifetime = _microseconds(task["expires_at"]) - _microseconds(task["updated_at"])
    assert lifetime == timedelta(hours=48)
    assert api.alice.get(f"/v2/images/{image['id']}").json()["checksum"] == md5(DATA)


@pytest.mark.usefixtures("local")
def test_a_failed_import_ends_its_task_in_failure_with_the_reason(api: Callers, source: HttpSource) -> None:
    image = create(api.alice)
    assert web_download(api.alice, image["id"], source.base + "/missing").status_code == 202
    [task] = image_tasks_ended(api.alice, image["id"])
    assert task["status"] == "failure"
    assert "404" in task["message"]
    assert task["result"] is None
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_glance_direct_import_is_a_task_too(api: Callers) -> None:
    image = create(api.alice)
    staged = api.alice.put(
        f"/v2/images/{image['id']}/stage", content=DATA, headers={"Content-Type": "application/octet-stream"}
    )
    assert staged.status_code == 204
    body = {"method": {"name": "glance-direct"}}
    assert api.alice.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
    [task] = image_tasks_ended(api.alice, image["id"])
    assert (task["type"], task["status"]) == ("api_image_import", "success")
    assert task["input"]["import_req"] == body


@pytest.mark.usefixtures("local")
def test_image_tasks_are_404_for_an_image_the_caller_cannot_see(api: Callers, source: HttpSource) -> None:
    image = create(api.alice)
    web_download(api.alice, image["id"], source.serve("/d", DATA))
    image_tasks_ended(api.alice, image["id"])
    for caller in (api.bob, api.carol):
        assert caller.get(f"/v2/images/{image['id']}/tasks").status_code == 404
    assert api.bob.get(f"/v2/images/{uuid.uuid4()}/tasks").status_code == 404
    assert api.bob.get("/v2/images/not-an-id/tasks").status_code == 404


@pytest.mark.usefixtures("local")
def test_a_project_sees_only_its_own_tasks_of_an_image_it_can_see(
    api: Callers, world: World, source: HttpSource
) -> None:
    """Glance filters the image's tasks with _is_task_visible: the owner project's or an admin's."""
    image = create(api.alice)
    web_download(api.alice, image["id"], source.serve("/d", DATA))
    image_tasks_ended(api.alice, image["id"])
    added = api.alice.post(f"/v2/images/{image['id']}/members", json={"member": world.projects["beta"]})
    assert added.status_code == 200
    member = f"/v2/images/{image['id']}/members/{world.projects['beta']}"
    assert api.bob.put(member, json={"status": "accepted"}).status_code == 200
    assert api.bob.get(f"/v2/images/{image['id']}").status_code == 200
    assert api.bob.get(f"/v2/images/{image['id']}/tasks").json() == {"tasks": []}
    # A reader of the owner project, and an admin, see the task.
    assert len(api.rita.get(f"/v2/images/{image['id']}/tasks").json()["tasks"]) == 1
    assert len(api.admin.get(f"/v2/images/{image['id']}/tasks").json()["tasks"]) == 1


# ---- the tasks API --------------------------------------------------------------------------------------


def test_the_tasks_api_is_admin_only_by_default(api: Callers, db: Database, world: World) -> None:
    """Glance's tasks_api_access default is role:admin; every call of the API checks it first."""
    task_id = _recorded(db, world, "alpha")
    for caller in (api.alice, api.rita, api.bob):
        assert caller.get("/v2/tasks").status_code == 403
        assert caller.get(f"/v2/tasks/{task_id}").status_code == 403
        assert import_task(caller, "http://example.com/x").status_code == 403
        assert caller.delete(f"/v2/tasks/{task_id}").status_code == 403
        assert caller.post("/v2/tasks", content=b"{not json").status_code == 403
    assert api.anonymous.get("/v2/tasks").status_code == 401
    assert api.admin.get(f"/v2/tasks/{task_id}").status_code == 200
    assert [t["id"] for t in api.admin.get("/v2/tasks").json()["tasks"]] == [task_id]


@pytest.mark.usefixtures("local")
def test_an_import_task_creates_an_image_and_fills_it(api: Callers, world: World, source: HttpSource) -> None:
    uri = source.serve("/image.raw", DATA)
    response = import_task(api.admin, uri, name="from a task", tags=["t1"])
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"/v2/tasks/{created['id']}"
    # task-create-response.json: pending, no expiry yet, an empty message and a null result.
    assert (created["type"], created["status"], created["message"], created["result"]) == (
        "import",
        "pending",
        "",
        None,
    )
    assert "expires_at" not in created
    assert created["input"]["import_from"] == uri
    assert (created["self"], created["schema"]) == (f"/v2/tasks/{created['id']}", "/v2/schemas/task")
    assert created["owner"] == world.projects["admin"]
    task = ended(api.admin, created["id"])
    assert task["status"] == "success", task
    image_id = task["result"]["image_id"]
    assert task["image_id"] == image_id
    assert task["expires_at"].endswith("Z")
    image = api.admin.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["name"], image["tags"], image["checksum"]) == (
        "active",
        "from a task",
        ["t1"],
        md5(DATA),
    )
    assert api.admin.get(f"/v2/images/{image_id}/file").content == DATA
    assert [t["id"] for t in api.admin.get(f"/v2/images/{image_id}/tasks").json()["tasks"]] == [task["id"]]


@pytest.mark.usefixtures("local")
def test_a_source_that_cannot_be_fetched_ends_the_task_in_failure(api: Callers) -> None:
    images_before = api.admin.get("/v2/images").json()["images"]
    for uri, reason in (
        (UNREACHABLE, "The download failed"),
        ("http://no-such-host.invalid/image", "cannot resolve"),
    ):
        response = import_task(api.admin, uri)
        assert response.status_code == 201, response.text
        task = ended(api.admin, response.json()["id"])
        assert task["status"] == "failure", task
        assert reason in task["message"], task["message"]
        assert task["result"] is None
        assert "expires_at" in task
    # The image the task created is gone again, as Glance's reverted task deletes it.
    assert api.admin.get("/v2/images").json()["images"] == images_before


def test_an_address_the_egress_policy_refuses_ends_the_task_in_failure(
    api: Callers, source: HttpSource
) -> None:
    response = import_task(api.admin, source.serve("/inside", DATA))
    assert response.status_code == 201
    task = ended(api.admin, response.json()["id"])
    assert task["status"] == "failure"
    assert "may not reach" in task["message"]
    assert source.requests == []


def test_an_import_task_with_unacceptable_input_fails(api: Callers) -> None:
    body = {"type": "import", "input": {"import_from": "http://example.com/x", "import_from_format": "raw"}}
    response = api.admin.post("/v2/tasks", json=body)
    assert response.status_code == 201
    task = ended(api.admin, response.json()["id"])
    assert (task["status"], task["message"]) == ("failure", "Input does not contain 'image_properties' field")
    bad = import_task(api.admin, "http://example.com/x", disk_format="floppy")
    task = ended(api.admin, bad.json()["id"])
    assert task["status"] == "failure"
    assert task["message"].startswith("The image could not be created")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"input": {}}, "Task 'type' is required"),
        ({"type": "import"}, "Task 'input' is required"),
        ({"type": "export", "input": {}}, "Failed validating"),
        ({"type": "import", "input": {}, "colour": "x"}, "Failed validating"),
        ({"type": "import", "input": []}, "Failed validating"),
        ({"type": "api_image_import", "input": {}}, "cannot be created through the tasks API"),
        ({"type": "import", "input": {}}, "Invalid location: None"),
        (
            {"type": "import", "input": {"import_from": "file:///etc/passwd"}},
            "File based imports are not allowed",
        ),
        ({"type": "import", "input": {"import_from": "ftp://example.com/x"}}, "does not pass filtering"),
        ([], "Body expected in request."),
    ],
)
def test_bad_task_requests_are_400(api: Callers, body: Any, text: str) -> None:
    response = api.admin.post("/v2/tasks", json=body)
    assert response.status_code == 400, response.text
    assert text in message(response)
    assert api.admin.get("/v2/tasks").json()["tasks"] == []


def test_tasks_are_not_deleted_by_request(api: Callers, db: Database, world: World) -> None:
    task_id = _recorded(db, world, "alpha")
    response = api.admin.delete(f"/v2/tasks/{task_id}")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert api.admin.get(f"/v2/tasks/{task_id}").status_code == 200


def test_an_unknown_task_is_404(api: Callers) -> None:
    assert api.admin.get(f"/v2/tasks/{uuid.uuid4()}").status_code == 404
    assert api.admin.get("/v2/tasks/not-a-uuid").status_code == 404


# ---- lists: filters, sort, pagination ------------------------------------------------------------------


def _ctx(world: World, project: str) -> RequestContext:
    return RequestContext(world.users["alice"], world.projects[project], frozenset({"member"}))


def _recorded(db: Database, world: World, project: str, *, image_id: str | None = None) -> str:
    task_id = str(uuid.uuid4())
    with db.write() as conn:
        tasks.record(
            conn, _ctx(world, project), task_id, tasks.IMPORT, {"import_from": "x"}, image_id=image_id
        )
    return task_id


def test_list_filters_sorts_and_pages_as_glance(api: Callers, db: Database, world: World) -> None:
    ids = [_recorded(db, world, "alpha") for _ in range(5)]
    tasks.begin_processing(db, ids[0])
    tasks.end(db, ids[1], "it broke", None, timedelta(hours=1))
    listed = api.admin.get("/v2/tasks").json()
    # Newest first (sort_key created_at, sort_dir desc), the partial task schema's fields.
    assert [t["id"] for t in listed["tasks"]] == _by_created(db, ids, reverse=True)
    assert set(listed["tasks"][0]) == {
        "id",
        "type",
        "status",
        "owner",
        "created_at",
        "updated_at",
        "self",
        "schema",
    }
    assert (listed["first"], listed["schema"]) == ("/v2/tasks", "/v2/schemas/tasks")
    assert "next" not in listed
    assert [t["id"] for t in api.admin.get("/v2/tasks?status=processing").json()["tasks"]] == [ids[0]]
    failed = api.admin.get("/v2/tasks?status=failure").json()["tasks"]
    assert [(t["id"], "expires_at" in t) for t in failed] == [(ids[1], True)]
    assert api.admin.get("/v2/tasks?type=import&owner=nobody").json()["tasks"] == []
    # Pages of two, following `next`.
    seen: list[str] = []
    url = "/v2/tasks?limit=2&sort_dir=asc"
    while url:
        page = api.admin.get(url).json()
        seen += [t["id"] for t in page["tasks"]]
        url = page.get("next", "")
    assert seen == _by_created(db, ids, reverse=False)
    by_id = [t["id"] for t in api.admin.get("/v2/tasks?sort_key=id&sort_dir=asc").json()["tasks"]]
    assert by_id == sorted(ids)


def _by_created(db: Database, ids: list[str], *, reverse: bool) -> list[str]:
    with db.read() as conn:
        rows = [tq.fetch_task(conn, i, datetime(2000, 1, 1)) for i in ids]
    ordered = sorted((r.created_at, r.id) for r in rows if r is not None)
    return [i for _, i in (reversed(ordered) if reverse else ordered)]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("sort_dir=up", "Invalid sort direction: up"),
        ("sort_key=input", "Sort key supplied was not valid."),
        ("status=done", "Invalid status value: done"),
        ("type=export", "Invalid type value: export"),
        ("marker=abc", "Invalid marker format"),
        (f"marker={uuid.UUID(int=7)}", "was not found"),
        ("limit=x", "limit param must be an integer"),
        ("limit=-1", "limit param must be positive"),
    ],
)
def test_bad_list_queries_are_400(api: Callers, query: str, text: str) -> None:
    response = api.admin.get(f"/v2/tasks?{query}")
    assert response.status_code == 400, response.text
    assert text in message(response)


@pytest.fixture
def tasks_for_readers(tmp_path: Path) -> Iterator[None]:
    """A policy file that opens tasks_api_access to readers; the defaults again afterwards. (Asked
    for after `api`: the application it starts makes the settings' policy file the process's.)"""
    path = tmp_path / "policy.yaml"
    path.write_text('"tasks_api_access": "role:reader"\n')
    policy.use_policy_file(path)
    yield
    policy.use_policy_file(None)


def test_a_project_allowed_the_api_sees_only_its_own_tasks(
    api: Callers, db: Database, world: World, tasks_for_readers: None
) -> None:
    """With tasks_api_access opened to readers, a project lists and shows its own tasks only
    (Glance's owner filter); another project's task is 404 here (Glance: 403)."""
    mine, theirs = _recorded(db, world, "alpha"), _recorded(db, world, "beta")
    assert [t["id"] for t in api.alice.get("/v2/tasks").json()["tasks"]] == [mine]
    assert api.alice.get(f"/v2/tasks/{mine}").status_code == 200
    assert api.alice.get(f"/v2/tasks/{theirs}").status_code == 404
    assert api.alice.get(f"/v2/tasks?marker={theirs}").status_code == 400


# ---- expiry, recovery, schemas ---------------------------------------------------------------------------


def test_expired_tasks_disappear_and_are_purged(api: Callers, db: Database, world: World) -> None:
    image = create(api.alice)
    gone, kept = _recorded(db, world, "alpha", image_id=image["id"]), _recorded(db, world, "alpha")
    tasks.end(db, gone, None, {"image_id": image["id"]}, timedelta(seconds=-1))
    assert api.admin.get(f"/v2/tasks/{gone}").status_code == 404
    assert [t["id"] for t in api.admin.get("/v2/tasks").json()["tasks"]] == [kept]
    assert api.alice.get(f"/v2/images/{image['id']}/tasks").json() == {"tasks": []}
    assert tasks.purge_expired(db) == 1
    with db.read() as conn:
        assert tq.fetch_task(conn, gone, datetime(2000, 1, 1)) is None
        assert tq.fetch_task(conn, kept, datetime(2000, 1, 1)) is not None


def test_recovery_ends_the_tasks_a_stopped_server_was_running(
    db: Database, world: World, settings: Settings
) -> None:
    pending, running = _recorded(db, world, "alpha"), _recorded(db, world, "alpha")
    tasks.begin_processing(db, running)
    recover(db, FilesystemStore(settings.blob_dir))
    with db.read() as conn:
        for task_id in (pending, running):
            found = tq.fetch_task(conn, task_id, datetime(2000, 1, 1))
            assert found is not None
            assert (found.status, found.message) == ("failure", tasks.INTERRUPTED)
            assert found.expires_at is not None


@pytest.mark.usefixtures("local")
def test_task_documents_follow_the_served_schemas(api: Callers, source: HttpSource) -> None:
    task_schema = api.alice.get("/v2/schemas/task").json()
    list_schema = api.alice.get("/v2/schemas/tasks").json()
    assert task_schema["name"] == "task" and task_schema["additionalProperties"] is False
    assert list_schema["properties"]["tasks"]["items"]["name"] == "task"
    created = import_task(api.admin, source.serve("/s", DATA)).json()
    Draft4Validator(task_schema).validate(created)
    Draft4Validator(task_schema).validate(ended(api.admin, created["id"]))
    Draft4Validator(list_schema).validate(api.admin.get("/v2/tasks").json())


def test_a_task_ends_once(db: Database, world: World) -> None:
    """Status changes are compare-and-set: a late second ending (a failure after the success) is lost."""
    task_id = _recorded(db, world, "alpha")
    tasks.end(db, task_id, None, {"image_id": "i"}, timedelta(hours=1))
    tasks.end(db, task_id, "too late", None, timedelta(hours=1))
    tasks.begin_processing(db, task_id)
    with db.read() as conn:
        found = tq.fetch_task(conn, task_id, datetime(2000, 1, 1))
    assert found is not None
    assert (found.status, found.result, found.message) == ("success", {"image_id": "i"}, "")
