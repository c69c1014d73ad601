"""Keystone's project notifications, read from a real RabbitMQ by the listener of an in-process
server with identity = "keystone" against the real Keystone of scripts/ensure-keystone.sh.

The messages here are put on the bus as Keystone puts them (its exchange `keystone`, routing key
`notifications.info`, oslo.messaging's messagingv2 envelope), in the `basic` format and with
payloads a Keystone could never send; tests/e2e/test_keystone_bus_cli.py has a Keystone send its
own (`cadf`, its default). The payloads below were captured from Keystone 30.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu
import pytest
from keystoneauth1 import session as ks_session
from sqlalchemy import select
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import FilesystemStore
from spyglass.db.engine import Database
from spyglass.db.tables import domains, image_members, images, projects
from spyglass.identity.keystone_directory import KeystoneDirectory
from spyglass.keystone_settings import KeystoneAuthtoken
from spyglass.settings import Settings
from spyglass.sharing import project_events
from spyglass.sharing.project_events import Listener, MalformedNotification, project_id_of
from tests.keystone import Account, Keystone, Relay, keystone
from tests.rabbitmq import broker, eventually, queue_state, vhost_url

__all__ = ["broker", "keystone", "vhost_url"]

# Keystone 30, notification_format = cadf (its default): identity.project.deleted.
CADF = {
    "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
    "eventType": "activity",
    "id": "441719eb-ea4f-5ede-b9de-a7ab7d6ba1f1",
    "eventTime": "2026-12-06T07:56:37.514630+0000",
    "action": "deleted.project",
    "outcome": "success",
    "observer": {"id": "4c8ce21375454559846c72be009e500f", "typeURI": "service/security"},
    "initiator": {
        "id": "0f6145aac0ff440686abd0e5e4796eec",
        "typeURI": "service/security/account/user",
        "host": {"address": "127.0.0.1", "agent": "python-httpx/0.29.0"},
        "user_id": "0f6145aac0ff440686abd0e5e4796eec",
        "project_id": "5021e3aa9a4940cf813e96ace364928d",
        "request_id": "req-d939920a-ed20-4dd5-9d20-726c038a3dc3",
        "name": "admin",
        "username": "admin",
    },
    "target": {"id": "4aca8522ff424302ba2d996767af392c", "typeURI": "data/security/project"},
    "resource_info": "4aca8522ff424302ba2d996767af392c",
}
# Keystone 30, notification_format = basic: identity.project.updated.
BASIC = {
    "resource_info": "1cb2108d9284438ea6d82a8690d800d3",
    "request_id": "req-b3adaad3-4a8b-4523-b1da-82cd87f28d5f",
}
POOL = "spyglass"


def test_the_project_is_read_from_both_formats() -> None:
    assert project_id_of(CADF) == "4aca8522ff424302ba2d996767af392c"
    assert project_id_of(BASIC) == "1cb2108d9284438ea6d82a8690d800d3"
    # A CADF event without resource_info still names its target.
    target_only = {key: value for key, value in CADF.items() if key != "resource_info"}
    assert project_id_of(target_only) == "4aca8522ff424302ba2d996767af392c"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "4aca8522ff424302ba2d996767af392c",
        ["4aca8522ff424302ba2d996767af392c"],
        {},
        {"request_id": "req-1"},
        {"resource_info": 42},
        {"resource_info": ""},
        {"resource_info": "x" * 65},
        {"resource_info": "abc\ndef"},
        # What would name another URL of Keystone's, or a domain entry of the image side.
        {"resource_info": ".."},
        {"resource_info": "."},
        {"resource_info": "a/b"},
        {"resource_info": "domain:4aca8522ff424302ba2d996767af392c"},
        {"target": {"id": "domain:default"}},
        {"resource_info": "a b"},
        {"target": "4aca8522ff424302ba2d996767af392c"},
        {"target": {"typeURI": "data/security/project"}},
        {**CADF, "target": {"id": "0" * 32, "typeURI": "data/security/project"}},
    ],
)
def test_a_payload_that_names_no_project_is_refused(payload: Any) -> None:
    with pytest.raises(MalformedNotification):
        project_id_of(payload)


# ---- the listener, on a real broker, asking the real Keystone -----------------------------------


class Bus:
    """Puts messages on Keystone's exchange as Keystone's notifier does."""

    def __init__(self, url: str) -> None:
        self.connection = kombu.Connection(url.replace("rabbit://", "amqp://", 1))
        self.exchange = kombu.Exchange("keystone", type="topic", durable=False)
        self.producer = self.connection.Producer(exchange=self.exchange, routing_key="notifications.info")

    def raw(self, body: Any) -> None:
        self.producer.publish(body, serializer="json", declare=[self.exchange])

    def notify(self, event_type: str, payload: Any) -> None:
        message = {
            "message_id": str(uuid.uuid4()),
            "publisher_id": "identity.test-host",
            "event_type": event_type,
            "priority": "INFO",
            "payload": payload,
            "timestamp": "2026-12-06 07:56:37.514630",
        }
        self.raw({"oslo.version": "2.0", "oslo.message": json.dumps(message)})

    def close(self) -> None:
        self.connection.release()


@contextmanager
def node(
    settings: Settings, db: Database, keystone: Keystone, transport_url: str, **authtoken: Any
) -> Iterator[TestClient]:
    options = keystone.authtoken_options(http_connect_timeout=30, **authtoken)
    configured = dataclasses.replace(
        settings,
        identity="keystone",
        keystone_authtoken=KeystoneAuthtoken(**options),  # type: ignore[arg-type]
        keystone_notifications_transport_url=transport_url,
        keystone_notifications_pool=POOL,
    )
    with TestClient(create_app(configured, db=db, store=FilesystemStore(settings.blob_dir))) as client:
        yield client


def listening(url: str, consumers: int = 1) -> None:
    eventually(
        lambda: (state := queue_state(url, POOL)) is not None and state.consumers >= consumers,
        f"{consumers} listener(s) on queue {POOL}",
    )


def drained(url: str) -> None:
    """Every message put on the queue was handled (acknowledged, after the handler returned)."""
    eventually(
        lambda: (state := queue_state(url, POOL)) is not None and state.ready + state.unacknowledged == 0,
        f"queue {POOL} drained",
    )


def members_of(db: Database, image_id: str) -> dict[str, str]:
    with db.read() as conn:
        rows = conn.execute(
            select(image_members.c.member_id, image_members.c.status).where(
                image_members.c.image_id == image_id
            )
        )
        return {str(member): str(status) for member, status in rows}


def visibility(db: Database, image_id: str) -> str:
    with db.read() as conn:
        return str(conn.execute(select(images.c.visibility).where(images.c.id == image_id)).scalar_one())


class Sharing:
    """An image of `owner` shared with the given projects, each of which accepted it."""

    def __init__(self, client: TestClient, keystone: Keystone, owner: Account, *members: Account) -> None:
        self.client = client
        self.keystone = keystone
        token = keystone.account_token(owner)
        body = {"name": "shared", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
        created = client.post("/v2/images", json=body, headers={"X-Auth-Token": token})
        assert created.status_code == 201, created.text
        self.image_id = str(created.json()["id"])
        for member in members:
            path = f"/v2/images/{self.image_id}/members"
            added = client.post(path, json={"member": member.project_id}, headers={"X-Auth-Token": token})
            assert added.status_code == 200, added.text
            accepted = client.put(
                f"{path}/{member.project_id}",
                json={"status": "accepted"},
                headers={"X-Auth-Token": keystone.account_token(member)},
            )
            assert accepted.status_code == 200, accepted.text

    def seen_by(self, member: Account) -> bool:
        token = self.keystone.account_token(member)
        listed = self.client.get("/v2/images", headers={"X-Auth-Token": token})
        assert listed.status_code == 200, listed.text
        return self.image_id in {image["id"] for image in listed.json()["images"]}


def test_basic_notifications_apply_what_keystone_says(
    settings: Settings, db: Database, keystone: Keystone, vhost_url: str
) -> None:
    owner, beta, gamma = keystone.account("owner"), keystone.account("beta"), keystone.account("gamma")
    bus = Bus(vhost_url)
    # Two nodes of one deployment: one queue for the pool, read by both.
    with node(settings, db, keystone, vhost_url) as client, node(settings, db, keystone, vhost_url):
        listening(vhost_url, consumers=2)
        shared = Sharing(client, keystone, owner, beta, gamma)
        owned_by_gamma = Sharing(client, keystone, gamma, beta)

        keystone.delete_project(gamma.project_id)
        bus.notify("identity.project.deleted", {"resource_info": gamma.project_id, "request_id": "req-1"})
        eventually(
            lambda: gamma.project_id not in members_of(db, shared.image_id), "gamma's membership removed"
        )
        assert members_of(db, shared.image_id) == {beta.project_id: "accepted"}
        # gamma's own image is private now, its data kept.
        assert visibility(db, owned_by_gamma.image_id) == "private"
        assert not owned_by_gamma.seen_by(beta)

        keystone.set_project_enabled(owner.project_id, False)
        bus.notify("identity.project.updated", {"resource_info": owner.project_id, "request_id": "req-2"})
        eventually(lambda: not shared.seen_by(beta), "the disabled owner's share suspended")
        keystone.set_project_enabled(owner.project_id, True)
        bus.notify("identity.project.updated", {"resource_info": owner.project_id, "request_id": "req-3"})
        eventually(lambda: shared.seen_by(beta), "the share restored")
        # The same messages again change nothing.
        bus.notify("identity.project.deleted", {"resource_info": gamma.project_id})
        bus.notify("identity.project.updated", {"resource_info": owner.project_id})
        drained(vhost_url)
        assert members_of(db, shared.image_id) == {beta.project_id: "accepted"}
        assert shared.seen_by(beta)
    bus.close()


def test_a_message_is_never_trusted_alone(
    settings: Settings, db: Database, keystone: Keystone, vhost_url: str
) -> None:
    owner, beta = keystone.account("owner"), keystone.account("beta")
    bus = Bus(vhost_url)
    with node(settings, db, keystone, vhost_url) as client:
        listening(vhost_url)
        shared = Sharing(client, keystone, owner, beta)
        # Someone who can publish on the bus claims that live, enabled projects went away.
        bus.notify("identity.project.deleted", {"resource_info": beta.project_id})
        bus.notify(
            "identity.project.deleted",
            {**CADF, "resource_info": owner.project_id, "target": {"id": owner.project_id}},
        )
        bus.notify("identity.project.updated", {"resource_info": owner.project_id})
        drained(vhost_url)
        assert members_of(db, shared.image_id) == {beta.project_id: "accepted"}
        assert visibility(db, shared.image_id) == "shared"
        assert shared.seen_by(beta)
    bus.close()


def test_malformed_messages_are_dropped_and_the_listener_goes_on(
    settings: Settings, db: Database, keystone: Keystone, vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    owner, beta = keystone.account("owner"), keystone.account("beta")
    bus = Bus(vhost_url)
    with node(settings, db, keystone, vhost_url) as client:
        listening(vhost_url)
        shared = Sharing(client, keystone, owner, beta)
        bus.raw("not a notification")
        bus.raw({"oslo.version": "2.0", "oslo.message": "{not json"})
        bus.raw(
            {"oslo.version": "2.0", "oslo.message": json.dumps({"event_type": "identity.project.deleted"})}
        )
        for payload in (None, [beta.project_id], {}, {"resource_info": 7}, {"target": {"id": "a\x00b"}}):
            bus.notify("identity.project.deleted", payload)
        bus.notify("identity.project.updated", "owner")
        keystone.delete_project(beta.project_id)
        bus.notify("identity.project.deleted", {"resource_info": beta.project_id})
        eventually(
            lambda: members_of(db, shared.image_id) == {}, "beta's membership removed after the garbage"
        )
        drained(vhost_url)
        assert "dropped a identity.project.deleted notification" in caplog.text
    bus.close()


def test_a_broker_out_of_reach_does_not_stop_the_server(
    settings: Settings, db: Database, keystone: Keystone, vhost_url: str, broker: str
) -> None:
    owner, beta = keystone.account("owner"), keystone.account("beta")
    relay = Relay(broker.replace("rabbit://guest:guest@", "http://", 1))
    relay.cut()
    through_relay = vhost_url.replace(f":{relay.target[1]}/", f":{relay.port}/", 1)
    bus = Bus(vhost_url)
    try:
        with node(settings, db, keystone, through_relay) as client:
            # The broker cannot be reached: the server serves all the same.
            shared = Sharing(client, keystone, owner, beta)
            assert shared.seen_by(beta)
            assert queue_state(vhost_url, POOL) is None
            relay.restore()
            listening(vhost_url)
            keystone.delete_project(beta.project_id)
            bus.notify("identity.project.deleted", {"resource_info": beta.project_id})
            eventually(lambda: members_of(db, shared.image_id) == {}, "beta's membership removed")
    finally:
        bus.close()
        relay.close()


def test_messages_that_can_never_be_applied_are_dropped_once(
    settings: Settings, db: Database, keystone: Keystone, vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    owner, beta = keystone.account("owner"), keystone.account("beta")
    domain = keystone.create_domain("acting")
    bus = Bus(vhost_url)
    with caplog.at_level(logging.INFO), node(settings, db, keystone, vhost_url) as client:
        listening(vhost_url)
        shared = Sharing(client, keystone, owner, beta)
        # ".." and "." would read Keystone's version document and its list of projects.
        for named in ("..", "."):
            bus.notify("identity.project.deleted", {"resource_info": named})
        # Keystone answers a domain's id with the domain acting as a project: not a project.
        bus.notify("identity.project.updated", {"resource_info": domain["id"]})
        drained(vhost_url)
        assert "'..' is not a project id Keystone makes" in caplog.text
        assert "'.' is not a project id Keystone makes" in caplog.text
        with db.read() as conn:
            assert conn.execute(select(projects.c.id).where(projects.c.id == domain["id"])).first() is None
            assert conn.execute(select(domains.c.id).where(domains.c.id.like("<<%"))).first() is None
        assert members_of(db, shared.image_id) == {beta.project_id: "accepted"}
    bus.close()


def test_a_service_user_that_cannot_read_projects_drops_messages_with_one_error(
    settings: Settings, db: Database, keystone: Keystone, vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A service user with the `service` role on its project, but no role on the system: Keystone
    # answers 403 to every project it is asked about, which waiting does not change.
    blind = keystone.account("blind-service", role="service")
    beta = keystone.account("beta")
    bus = Bus(vhost_url)
    with node(
        settings,
        db,
        keystone,
        vhost_url,
        username=blind.user_name,
        password=blind.password,
        project_name=blind.project_name,
    ):
        listening(vhost_url)
        for _ in range(3):
            bus.notify("identity.project.deleted", {"resource_info": beta.project_id})
        drained(vhost_url)
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and "cannot be applied" in r.getMessage()
    ]
    assert len(errors) == 1
    assert "give it the role 'reader' on the system" in errors[0].getMessage()
    bus.close()


def test_a_broker_out_of_reach_is_told_again_now_and_then(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(project_events, "RETRY_SECONDS", 0.0)
    unreachable = dataclasses.replace(
        settings, keystone_notifications_transport_url="rabbit://guest:guest@127.0.0.1:1/"
    )
    listener = Listener(db, KeystoneDirectory(ks_session.Session(), "http://127.0.0.1:1"), unreachable)

    def told() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "cannot be read yet" in r.getMessage()]

    with caplog.at_level(logging.DEBUG, logger=project_events.__name__):
        listener.start()
        try:
            eventually(lambda: len(told()) > project_events.WARN_EVERY, "attempts past the first warning")
        finally:
            listener.stop()
    levels = [r.levelno for r in told()[: project_events.WARN_EVERY + 1]]
    assert levels == [logging.WARNING] + [logging.DEBUG] * (project_events.WARN_EVERY - 1) + [logging.WARNING]


def test_a_message_keystone_cannot_answer_for_is_retried_a_bounded_number_of_times(
    settings: Settings,
    db: Database,
    keystone: Keystone,
    vhost_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(project_events, "RETRY_SECONDS", 0.01)
    beta = keystone.account("beta")
    relay = Relay(keystone.url)
    bus = Bus(vhost_url)
    try:
        with node(settings, db, keystone, vhost_url, auth_url=relay.url, www_authenticate_uri=relay.url):
            listening(vhost_url)
            relay.cut()  # Keystone out of reach for as long as the message is tried
            bus.notify("identity.project.deleted", {"resource_info": beta.project_id})
            drained(vhost_url)
        later = [r for r in caplog.records if "not applied yet" in r.getMessage()]
        assert len(later) == project_events.RETRIES
        assert f"project {beta.project_id} after {project_events.RETRIES} attempts" in caplog.text
    finally:
        bus.close()
        relay.close()
