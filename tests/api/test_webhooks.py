"""Webhooks: registration, the outbox, signed ordered delivery, retries and dead letters."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from spyglass.db.engine import Database
from spyglass.settings import Settings
from spyglass.timeutil import utcnow
from spyglass.web_download import AddressPolicy
from spyglass.webhook_worker import Retry, deliver_due, guarded, post
from tests.api.helpers import message
from tests.api.safety import callers_with, share
from tests.conftest import Caller, Callers, World

SECRET = "a-secret-of-enough-length"


@pytest.fixture
def quiet(settings: Settings, db: Database, world: World) -> Iterator[Callers]:
    """Callers against an app whose delivery worker is off: the tests deliver by hand."""
    with callers_with(settings, db, world, webhook_poll_seconds=0) as api:
        yield api


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        self.fail = fail

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionRefusedError("connection refused")
        self.sent.append((url, body, headers))

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, body, _ in self.sent]


def _register(caller: Caller, url: str = "http://hooks.example/in", secret: str | None = SECRET) -> str:
    body = {"url": url} if secret is None else {"url": url, "secret": secret}
    response = caller.post("/v2/webhooks", json=body)
    assert response.status_code == 201, response.text
    hook_id: str = response.json()["id"]
    return hook_id


def _deliveries(caller: Caller, hook_id: str) -> list[dict[str, Any]]:
    response = caller.get(f"/v2/webhooks/{hook_id}/deliveries")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


def test_register_list_and_delete(quiet: Callers, world: World) -> None:
    created = quiet.bob.post("/v2/webhooks", json={"url": "https://hooks.example/in"}).json()
    assert len(created["secret"]) >= 16 and created["project_id"] == world.projects["beta"]
    listed = quiet.bob.get("/v2/webhooks").json()["webhooks"]
    assert listed == [{k: v for k, v in created.items() if k != "secret"}]
    assert quiet.alice.get("/v2/webhooks").json()["webhooks"] == []
    assert quiet.alice.delete(f"/v2/webhooks/{created['id']}").status_code == 404
    assert quiet.bob.delete(f"/v2/webhooks/{created['id']}").status_code == 204
    assert quiet.bob.get("/v2/webhooks").json()["webhooks"] == []
    assert quiet.bob.delete("/v2/webhooks/not-an-id").status_code == 404


def test_registration_rules(quiet: Callers) -> None:
    bad = [
        {"url": "ftp://x/y"},
        {"url": "not a url"},
        {"url": "http://x/", "secret": "short"},
        {"url": "http://x/", "extra": 1},
        {"url": 5},
        {"url": "http://a..b/"},
        {"url": f"https://{'x' * 64}.example.com/"},
        {"url": "http://[::127.0.0.1]/"},
        {"url": "http://[2002:a9fe:a9fe::]/"},
    ]
    for body in bad:
        assert quiet.alice.post("/v2/webhooks", json=body).status_code == 400, body
    invalid = quiet.alice.post("/v2/webhooks", json={"url": "http://a..b/"})
    assert message(invalid) == "url: a..b is not a valid host name."
    assert quiet.rita.post("/v2/webhooks", json={"url": "http://x/"}).status_code == 403
    assert quiet.rita.get("/v2/webhooks").status_code == 200
    assert quiet.anonymous.get("/v2/webhooks").status_code == 401
    for _ in range(10):
        _register(quiet.alice)
    assert quiet.alice.post("/v2/webhooks", json={"url": "http://x/"}).status_code == 413


def test_events_are_delivered_signed_and_in_order(quiet: Callers, db: Database, world: World) -> None:
    beta = world.projects["beta"]
    hook = _register(quiet.bob)
    image_id = share(quiet.alice, beta, quiet.bob)
    assert quiet.alice.delete(f"/v2/images/{image_id}/members/{beta}").status_code == 204
    assert [d["event_type"] for d in _deliveries(quiet.bob, hook)] == [
        "member.added",
        "member.status_changed",
        "member.removed",
    ]
    recorder = Recorder()
    for _ in range(3):  # one delivery per webhook and round: order is kept
        assert deliver_due(db, Retry(), recorder) == 1
    assert recorder.types() == ["member.added", "member.status_changed", "member.removed"]
    url, body, headers = recorder.sent[0]
    assert url == "http://hooks.example/in"
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Spyglass-Signature"] == expected
    assert headers["X-Spyglass-Event"] == "member.added" and headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert (event["image_id"], event["member_id"], event["after"]) == (image_id, beta, {"status": "pending"})
    assert _deliveries(quiet.bob, hook) == []


def test_who_is_notified(quiet: Callers, db: Database, world: World) -> None:
    beta = world.projects["beta"]
    hooks = {name: _register(getattr(quiet, name)) for name in ("alice", "bob", "carol")}
    image_id = share(quiet.alice, beta)
    assert quiet.alice.delete(f"/v2/images/{image_id}").status_code == 204

    def types(name: str) -> list[str]:
        return [d["event_type"] for d in _deliveries(getattr(quiet, name), hooks[name])]

    assert types("alice") == ["member.added", "image.deleted"]  # the owner: everything
    assert types("bob") == ["member.added", "image.deleted"]  # the member: its share, the deletion
    assert types("carol") == []


def test_failures_are_retried_with_backoff_then_dead_lettered(
    quiet: Callers, db: Database, world: World
) -> None:
    hook = _register(quiet.bob)
    share(quiet.alice, world.projects["beta"], quiet.bob)
    retry = Retry(max_attempts=3, first_delay_seconds=10)
    failing = Recorder(fail=100)
    now = utcnow()
    assert deliver_due(db, retry, failing, now) == 0
    head = _deliveries(quiet.bob, hook)[0]
    assert (head["attempts"], head["status"]) == (1, "pending")
    assert "ConnectionRefusedError" in head["last_error"]
    assert deliver_due(db, retry, failing, now + timedelta(seconds=5)) == 0  # not yet due
    assert _deliveries(quiet.bob, hook)[0]["attempts"] == 1
    assert deliver_due(db, retry, failing, now + timedelta(seconds=11)) == 0
    assert deliver_due(db, retry, failing, now + timedelta(seconds=11 + 19)) == 0  # 20 s: not yet
    assert deliver_due(db, retry, failing, now + timedelta(seconds=11 + 21)) == 0
    dead, waiting = _deliveries(quiet.bob, hook)
    assert (dead["status"], dead["attempts"], dead["event_type"]) == ("dead", 3, "member.added")
    assert waiting["status"] == "pending" and waiting["attempts"] == 0
    working = Recorder()
    assert deliver_due(db, retry, working, now + timedelta(minutes=1)) == 1
    assert working.types() == ["member.status_changed"]
    assert [d["status"] for d in _deliveries(quiet.bob, hook)] == ["dead"]


def test_a_claimed_delivery_is_not_sent_twice(quiet: Callers, db: Database, world: World) -> None:
    _register(quiet.bob)
    share(quiet.alice, world.projects["beta"])
    seen: list[int] = []

    def reentrant(url: str, body: bytes, headers: dict[str, str]) -> None:
        # Another server process polling while this delivery is in flight finds nothing due.
        seen.append(deliver_due(db, Retry(), Recorder()))

    assert deliver_due(db, Retry(), reentrant) == 1
    assert seen == [0]


def test_a_deleted_project_loses_its_webhooks(quiet: Callers, world: World) -> None:
    _register(quiet.bob)
    assert quiet.admin.delete(f"/identity/v3/projects/{world.projects['beta']}").status_code == 204
    share(quiet.alice, world.projects["gamma"])
    assert quiet.admin.get("/v2/webhooks").json()["webhooks"] == []


class _Receiver(BaseHTTPRequestHandler):
    status = 204
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(self.status)
        if self.status == 302:
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"received": [], "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_post_needs_a_2xx_answer(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    post(url, b"{}", {"Content-Type": "application/json"})
    for status in (500, 302):
        handler.status = status
        with pytest.raises(OSError):
            post(url, b"{}", {})
    assert len(handler.received) == 3


def test_the_guarded_sender_connects_only_to_permitted_addresses(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    named = url.replace("127.0.0.1", "localhost")
    for refused in (url, named):
        with pytest.raises(ValueError, match="may not reach"):
            guarded(AddressPolicy())(refused, b"{}", {})
    assert handler.received == []
    local = AddressPolicy.of(Settings(web_download_allowed_networks=("127.0.0.1/32", "::1/128")))
    guarded(local)(named + "?q=1", b"{}", {"Content-Type": "application/json"})
    assert len(handler.received) == 1
    for status in (500, 302):
        handler.status = status
        with pytest.raises(HTTPException):
            guarded(local)(url, b"{}", {})
    assert len(handler.received) == 3


def test_the_server_worker_delivers(
    settings: Settings, db: Database, world: World, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    local = ("127.0.0.1/32",)
    with callers_with(
        settings, db, world, webhook_poll_seconds=1, web_download_allowed_networks=local
    ) as api:
        _register(api.bob, url)
        share(api.alice, world.projects["beta"], api.bob)
        deadline = time.monotonic() + 15
        while len(handler.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [json.loads(body)["type"] for _, body in handler.received] == [
        "member.added",
        "member.status_changed",
    ]
