"""Glance's notifications on a real RabbitMQ (scripts/ensure-rabbitmq.sh): what a consumer bound to
Glance's exchange and topic receives, and that the outbox loses nothing and sends nothing twice
when the broker cannot be reached.

Each test has its own virtual host (made with rabbitmqctl), so tests running at once never see
each other's messages. The consumer reads with kombu, as Ceilometer's listener does underneath.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import anyio
import kombu
import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.audit import bus, notifications
from spyglass.blobs.filesystem import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.tables import image_members, notification_outbox
from spyglass.settings import Settings
from tests.api.helpers import active, create
from tests.api.safety import download
from tests.conftest import Callers, World
from tests.data.test_tasks import ended, import_task
from tests.http_source import HttpSource, http_source
from tests.rabbitmq import broker, vhost_url

__all__ = ["broker", "vhost_url"]

UNREACHABLE = "rabbit://guest:guest@127.0.0.1:1/"

# The payload fields of Glance 33 (glance/notifier.py).
IMAGE_FIELDS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum",
    "owner", "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility",
    "properties", "tags", "deleted", "deleted_at",
}  # fmt: skip
IMPORT_FIELDS = {"os_glance_importing_to_stores", "os_glance_failed_import"}
MEMBER_FIELDS = {"image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at"}
TASK_FIELDS = {
    "id", "type", "status", "result", "owner", "message", "expires_at", "created_at", "updated_at",
    "deleted", "deleted_at",
}  # fmt: skip
SEND_FIELDS = {
    "bytes_sent", "image_id", "owner_id", "receiver_tenant_id", "receiver_user_id", "destination_ip",
}  # fmt: skip


class Consumer:
    """Reads what Glance's consumers read: exchange `glance`, routing key `notifications.info`."""

    def __init__(self, url: str) -> None:
        self.connection = kombu.Connection(url.replace("rabbit://", "amqp://", 1))
        exchange = kombu.Exchange("glance", type="topic", durable=False)
        # oslo.messaging declares this queue (not durable) when it sends, so messages wait for us.
        queue = kombu.Queue("notifications.info", exchange, routing_key="notifications.info", durable=False)
        self.queue = self.connection.SimpleQueue(queue)
        self.received: list[dict[str, Any]] = []

    def drain(
        self, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not until(self.received) and time.monotonic() < deadline:
            try:
                message = self.queue.get(timeout=0.5)
            except self.queue.Empty:
                continue
            body = message.payload
            assert body["oslo.version"] == "2.0"  # the messagingv2 envelope
            self.received.append(json.loads(body["oslo.message"]))
            message.ack()
        return self.received

    def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever else arrives within `seconds` (to show nothing more comes)."""
        before = len(self.received)
        self.drain(lambda _got: False, timeout=seconds)
        return self.received[before:]

    def close(self) -> None:
        self.queue.close()
        self.connection.release()


@pytest.fixture
def consumer(vhost_url: str) -> Iterator[Consumer]:
    reading = Consumer(vhost_url)
    yield reading
    reading.close()


def _app(settings: Settings, db: Database, **overrides: Any) -> TestClient:
    app = create_app(replace(settings, **overrides), db=db, store=FilesystemStore(settings.blob_dir))
    return TestClient(app, base_url="http://127.0.0.1:9292")


@pytest.fixture
def node(settings: Settings, db: Database, world: World, vhost_url: str) -> Iterator[Callers]:
    with _app(settings, db, notifications_transport_url=vhost_url) as client:
        yield Callers(client, world)
    notifications.disable(db.engine)


def types_of(received: list[dict[str, Any]]) -> list[str]:
    return [m["event_type"] for m in received]


def has(*wanted: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda got: all(w in types_of(got) for w in wanted)


def only(received: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    [found] = [m for m in received if m["event_type"] == event_type]
    return found


def outbox_size(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(notification_outbox)).scalar_one())


# ---- what Glance sends, as Glance sends it ---------------------------------------------------------


def test_image_life_reaches_glance_consumers_with_glance_payloads(
    node: Callers, consumer: Consumer, world: World
) -> None:
    alpha, beta = world.projects["alpha"], world.projects["beta"]
    image = active(node.alice, b"x" * 1000, name="bus", disk_format="raw", container_format="bare")
    image_id = image["id"]
    assert (
        node.alice.patch(
            f"/v2/images/{image_id}", [{"op": "add", "path": "/flavour", "value": "mint"}]
        ).status_code
        == 200
    )
    assert node.alice.put(f"/v2/images/{image_id}/tags/green").status_code == 204
    download(node.alice, image_id)
    got = consumer.drain(has("image.create", "image.prepare", "image.upload", "image.activate", "image.send"))
    assert types_of(got)[:4] == ["image.create", "image.prepare", "image.upload", "image.activate"]
    for message in got:
        assert message["publisher_id"].startswith("image.")
        assert message["priority"] == "INFO"
        uuid.UUID(message["message_id"])
    create_ = only(got, "image.create")["payload"]
    assert set(create_) == IMAGE_FIELDS
    assert (create_["id"], create_["status"], create_["owner"], create_["name"]) == (
        image_id,
        "queued",
        alpha,
        "bus",
    )
    assert create_["is_public"] is False and create_["deleted"] is False and create_["deleted_at"] is None
    prepare = only(got, "image.prepare")["payload"]
    assert set(prepare) == IMAGE_FIELDS | IMPORT_FIELDS | {"backend"}
    upload = only(got, "image.upload")["payload"]
    assert set(upload) == IMAGE_FIELDS | IMPORT_FIELDS | {"backend"}
    assert (upload["status"], upload["size"], upload["checksum"]) == ("active", 1000, image["checksum"])
    assert set(only(got, "image.activate")["payload"]) == IMAGE_FIELDS
    send = only(got, "image.send")["payload"]
    assert set(send) == SEND_FIELDS
    assert send == {
        "bytes_sent": 1000,
        "image_id": image_id,
        "owner_id": alpha,
        "receiver_tenant_id": alpha,
        "receiver_user_id": world.users["alice"],
        "destination_ip": "testclient",
    }
    updates = [m["payload"] for m in got if m["event_type"] == "image.update"]
    assert updates[0]["properties"] == {"flavour": "mint"}
    assert updates[-1]["tags"] == ["green"]

    # Sharing (new images are `shared`, as in Glance): the member events, and Spyglass's own.
    assert node.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
    accepted = node.bob.put(f"/v2/images/{image_id}/members/{beta}", json={"status": "accepted"})
    assert accepted.status_code == 200
    assert node.alice.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 204
    assert node.alice.delete(f"/v2/images/{image_id}").status_code == 204
    got = consumer.drain(
        has("image.member.create", "image.member.update", "image.member.delete", "image.delete")
    )
    created = only(got, "image.member.create")["payload"]
    assert set(created) == MEMBER_FIELDS
    assert (created["image_id"], created["member_id"], created["status"]) == (image_id, beta, "pending")
    assert only(got, "image.member.update")["payload"]["status"] == "accepted"
    removed = only(got, "image.member.delete")["payload"]
    assert (removed["status"], removed["deleted"]) == ("accepted", True) and removed["deleted_at"]
    # The row is gone when the removal is recorded: its time of creation comes with the event.
    assert removed["created_at"] == created["created_at"] is not None
    deleted = only(got, "image.delete")["payload"]
    assert set(deleted) == IMAGE_FIELDS
    assert (deleted["id"], deleted["status"], deleted["deleted"]) == (image_id, "deleted", True)
    assert deleted["deleted_at"] is not None
    # Spyglass's own events go out beside them, under spyglass.*.
    added = only(got, "spyglass.member.added")["payload"]
    assert (added["image_id"], added["member_id"], added["owner"]) == (image_id, beta, alpha)
    assert "spyglass.member.removed" in types_of(got) and "spyglass.image.deleted" in types_of(got)


def test_a_removed_membership_reports_its_own_times_as_glance_does(
    node: Callers, consumer: Consumer, world: World, db: Database
) -> None:
    beta = world.projects["beta"]
    image_id = create(node.alice, name="member-times", visibility="shared")["id"]
    assert node.alice.post(f"/v2/images/{image_id}/members", json={"member": beta}).status_code == 200
    accepted = node.bob.put(f"/v2/images/{image_id}/members/{beta}", json={"status": "accepted"})
    assert accepted.status_code == 200
    # Made on the 1st, accepted on the 5th, removed now.
    made, changed = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)
    with db.write() as conn:
        row = (image_members.c.image_id == image_id) & (image_members.c.member_id == beta)
        conn.execute(update(image_members).where(row).values(created_at=made, updated_at=changed))
    assert node.alice.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 204
    removed = only(consumer.drain(has("image.member.delete")), "image.member.delete")["payload"]
    # Glance's image.member.delete: the membership's times, and its end as deleted_at.
    assert (removed["created_at"], removed["updated_at"]) == ("2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z")
    assert removed["deleted"] is True and removed["deleted_at"] > removed["updated_at"]


def test_tasks_reach_the_bus(
    settings: Settings, db: Database, world: World, vhost_url: str, consumer: Consumer
) -> None:
    with (
        http_source() as source,
        _app(
            settings,
            db,
            notifications_transport_url=vhost_url,
            web_download_allowed_networks=("127.0.0.1/32",),
        ) as client,
    ):
        api = Callers(client, world)
        created = import_task(api.admin, source.serve("/disk.raw", b"task data " * 100))
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        assert ended(api.admin, task_id)["status"] == "success"
        wanted = ("task.create", "task.run", "task.processing", "task.success")
        got = consumer.drain(has(*wanted))
    notifications.disable(db.engine)
    tasks = [m for m in got if m["event_type"].startswith("task.")]
    assert types_of(tasks) == list(wanted)
    for message in tasks:
        payload = message["payload"]
        assert set(payload) == TASK_FIELDS
        assert (payload["id"], payload["type"], payload["owner"]) == (
            task_id,
            "import",
            world.projects["admin"],
        )
        assert payload["result"] is None and payload["message"] is None  # never the input or result
    assert tasks[-1]["payload"]["status"] == "success" and tasks[-1]["payload"]["expires_at"]
    assert "image.activate" in types_of(got)


# ---- the outbox: nothing lost, nothing sent twice ----------------------------------------------------


def test_a_broker_out_of_reach_fails_no_call_and_loses_nothing(
    settings: Settings, db: Database, world: World, vhost_url: str, consumer: Consumer
) -> None:
    # A node whose broker cannot be reached: every call still succeeds, the outbox keeps the messages.
    with _app(settings, db, notifications_transport_url=UNREACHABLE) as client:
        api = Callers(client, world)
        ids = [create(api.alice, name=f"offline-{n}")["id"] for n in range(3)]
        for image_id in ids:
            ops = [{"op": "add", "path": "/stage", "value": "kept"}]
            assert api.alice.patch(f"/v2/images/{image_id}", ops).status_code == 200
        assert api.alice.delete(f"/v2/images/{ids[0]}").status_code == 204
        time.sleep(2.5)  # rounds ran, and failed
        assert outbox_size(db) > 0
    assert consumer.quiet_for(1) == []
    kept = outbox_size(db)
    assert kept == 3 + 3 + 1 + 1  # create, update, image.delete and spyglass.image.deleted

    # The node comes back with the broker in reach (a restart): everything arrives, once.
    with _app(settings, db, notifications_transport_url=vhost_url):
        got = consumer.drain(lambda received: len(received) >= kept)
        got += consumer.quiet_for(2)
    notifications.disable(db.engine)
    assert len(got) == kept
    assert len({m["message_id"] for m in got}) == kept
    assert sorted(types_of(got)) == sorted(
        ["image.create"] * 3 + ["image.update"] * 3 + ["image.delete", "spyglass.image.deleted"]
    )
    # In the order the changes were made.
    assert [m["payload"].get("name") for m in got if m["event_type"] == "image.create"] == [
        "offline-0", "offline-1", "offline-2",
    ]  # fmt: skip
    assert outbox_size(db) == 0


def test_a_failed_call_queues_nothing(node: Callers, db: Database) -> None:
    image_id = create(node.alice)["id"]
    before = outbox_size(db)
    twin = node.alice.post("/v2/images", json={"id": image_id})
    assert twin.status_code == 409
    refused = node.bob.patch(f"/v2/images/{image_id}", [{"op": "add", "path": "/x", "value": "y"}])
    assert refused.status_code == 404
    assert outbox_size(db) <= before  # the round may have sent some meanwhile; none were added


def test_two_nodes_sending_one_outbox_send_each_row_once(
    settings: Settings, db: Database, vhost_url: str, consumer: Consumer
) -> None:
    notifications.enable(db.engine)
    try:
        with db.write() as conn:
            notifications.emit_many(conn, [("spyglass.test", {"n": n}) for n in range(300)])
    finally:
        notifications.disable(db.engine)
    configured = replace(settings, notifications_transport_url=vhost_url)
    nodes = [bus.Bus(configured), bus.Bus(configured)]
    counts: list[int] = []

    def run(node: bus.Bus) -> None:
        sent = 0
        while outbox_size(db):
            sent += bus.send_due(db, node)
        counts.append(sent)

    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for node in nodes:
        node.close()
    assert sum(counts) == 300
    got = consumer.drain(lambda received: len(received) >= 300)
    got += consumer.quiet_for(1)
    assert sorted(m["payload"]["n"] for m in got) == list(range(300))


def test_notifications_off_queue_nothing(api: Callers, db: Database) -> None:
    active(api.alice)
    assert outbox_size(db) == 0


def test_publisher_id_is_glances(settings: Settings) -> None:
    assert bus.publisher_id(settings).startswith("image.")
    assert bus.publisher_id(replace(settings, notifications_publisher_id="image.node1")) == "image.node1"


@pytest.fixture
def source() -> Iterator[HttpSource]:
    with http_source() as running:
        yield running


# ---- image.send: the bytes that went out ----------------------------------------------------------


def test_image_send_carries_the_bytes_of_a_range(node: Callers, consumer: Consumer, world: World) -> None:
    image_id = active(node.alice, b"r" * 1000)["id"]
    assert download(node.alice, image_id, headers={"Range": "bytes=100-349"}) == b"r" * 250
    send = only(consumer.drain(has("image.send")), "image.send")
    assert send["priority"] == "INFO"
    assert send["payload"]["bytes_sent"] == 250
    assert send["payload"]["receiver_tenant_id"] == world.projects["alpha"]
    assert send["payload"]["receiver_user_id"] == world.users["alice"]
    assert send["payload"]["owner_id"] == world.projects["alpha"]


def test_a_download_the_client_left_sends_what_went_out_as_an_error(
    settings: Settings, db: Database, world: World
) -> None:
    size = 8 * 1024 * 1024
    configured = replace(settings, notifications_transport_url=UNREACHABLE)
    app = create_app(configured, db=db, store=FilesystemStore(settings.blob_dir))
    with TestClient(app, base_url="http://127.0.0.1:9292") as client:
        image_id = active(Callers(client, world).alice, b"d" * size)["id"]
    token = world.tokens["alice"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v2/images/{image_id}/file",
        "raw_path": f"/v2/images/{image_id}/file".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"x-auth-token", token)],
        "client": ("192.0.2.7", 40000),
        "server": ("127.0.0.1", 9292),
        "state": {},
    }
    received: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}  # the client is gone at once

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            received.append(len(message.get("body", b"")))

    anyio.run(app, scope, receive, send)
    notifications.disable(db.engine)
    with db.read() as conn:
        rows = conn.execute(
            select(notification_outbox.c.priority, notification_outbox.c.payload).where(
                notification_outbox.c.event_type == "image.send"
            )
        ).all()
    [(priority, payload)] = rows
    sent = json.loads(payload)
    assert sent["bytes_sent"] == sum(received) < size
    assert priority == "ERROR"
    assert (sent["image_id"], sent["destination_ip"]) == (image_id, "192.0.2.7")
