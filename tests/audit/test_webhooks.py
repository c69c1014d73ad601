"""Webhooks: registration, the outbox, signed ordered delivery, retries and dead letters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from spyglass.audit.delivery import Retry, deliver_due, guarded, post
from spyglass.audit.outbox import seal_clear_secrets
from spyglass.db.engine import Database
from spyglass.db.tables import webhooks
from spyglass.egress import AddressPolicy
from spyglass.secret_box import SecretBox, SecretKeyError
from spyglass.settings import Settings
from spyglass.timeutil import utcnow
from tests.api.helpers import message
from tests.api.safety import callers_with, share
from tests.conftest import Caller, Callers, World

SECRET = "a-secret-of-enough-length"


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    """The key the application seals secrets under (data_dir/secret.key)."""
    return SecretBox.of(settings)


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


def test_events_are_delivered_signed_and_in_order(
    quiet: Callers, db: Database, box: SecretBox, world: World
) -> None:
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
        assert deliver_due(db, box, Retry(), recorder) == 1
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
    quiet: Callers, db: Database, box: SecretBox, world: World
) -> None:
    hook = _register(quiet.bob)
    share(quiet.alice, world.projects["beta"], quiet.bob)
    retry = Retry(max_attempts=3, first_delay_seconds=10)
    failing = Recorder(fail=100)
    now = utcnow()
    assert deliver_due(db, box, retry, failing, now) == 0
    head = _deliveries(quiet.bob, hook)[0]
    assert (head["attempts"], head["status"]) == (1, "pending")
    assert "ConnectionRefusedError" in head["last_error"]
    assert deliver_due(db, box, retry, failing, now + timedelta(seconds=5)) == 0  # not yet due
    assert _deliveries(quiet.bob, hook)[0]["attempts"] == 1
    assert deliver_due(db, box, retry, failing, now + timedelta(seconds=11)) == 0
    assert deliver_due(db, box, retry, failing, now + timedelta(seconds=11 + 19)) == 0  # 20 s: not yet
    assert deliver_due(db, box, retry, failing, now + timedelta(seconds=11 + 21)) == 0
    dead, waiting = _deliveries(quiet.bob, hook)
    assert (dead["status"], dead["attempts"], dead["event_type"]) == ("dead", 3, "member.added")
    assert waiting["status"] == "pending" and waiting["attempts"] == 0
    working = Recorder()
    assert deliver_due(db, box, retry, working, now + timedelta(minutes=1)) == 1
    assert working.types() == ["member.status_changed"]
    assert [d["status"] for d in _deliveries(quiet.bob, hook)] == ["dead"]


def test_a_claimed_delivery_is_not_sent_twice(
    quiet: Callers, db: Database, box: SecretBox, world: World
) -> None:
    _register(quiet.bob)
    share(quiet.alice, world.projects["beta"])
    seen: list[int] = []

    def reentrant(url: str, body: bytes, headers: dict[str, str]) -> None:
        # Another server process polling while this delivery is in flight finds nothing due.
        seen.append(deliver_due(db, box, Retry(), Recorder()))

    assert deliver_due(db, box, Retry(), reentrant) == 1
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


# ---- secrets at rest ------------------------------------------------------------------------------


def _stored_secret(db: Database, hook_id: str) -> str:
    with db.read() as conn:
        stored: str = conn.execute(select(webhooks.c.secret).where(webhooks.c.id == hook_id)).scalar_one()
    return stored


def test_secrets_are_sealed_in_the_database(quiet: Callers, db: Database, settings: Settings) -> None:
    hook = _register(quiet.bob)
    generated = quiet.bob.post("/v2/webhooks", json={"url": "http://hooks.example/2"}).json()
    for hook_id, secret in ((hook, SECRET), (generated["id"], generated["secret"])):
        stored = _stored_secret(db, hook_id)
        assert stored.startswith("sealed:v1:") and secret not in stored
    if db.is_sqlite:
        dump = b"".join(p.read_bytes() for p in settings.data_dir.glob("spyglass.db*"))
        assert SECRET.encode() not in dump and generated["secret"].encode() not in dump
    key_file = settings.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_secret_sealed_under_another_key_is_never_sent_unsigned(
    quiet: Callers, db: Database, world: World
) -> None:
    hook = _register(quiet.bob)
    share(quiet.alice, world.projects["beta"])
    other = SecretBox(os.urandom(32))
    with pytest.raises(SecretKeyError, match="sealed under another key"):
        other.open(_stored_secret(db, hook), hook)
    recorder = Recorder()
    assert deliver_due(db, other, Retry(), recorder) == 0
    assert recorder.sent == []
    head = _deliveries(quiet.bob, hook)[0]
    assert (head["attempts"], head["last_error"]) == (
        1,
        "the webhook's secret cannot be opened on this server",
    )


def test_a_sealed_secret_opens_only_for_its_own_webhook(quiet: Callers, db: Database, box: SecretBox) -> None:
    first, second = _register(quiet.bob), _register(quiet.bob)
    assert box.open(_stored_secret(db, first), first) == SECRET
    with pytest.raises(SecretKeyError):
        box.open(_stored_secret(db, first), second)


def test_clear_secrets_from_before_sealing_still_sign_and_are_sealed_at_start(
    quiet: Callers, db: Database, box: SecretBox, world: World
) -> None:
    hook = _register(quiet.bob)
    with db.write() as conn:  # as a database from before sealing holds it
        conn.execute(update(webhooks).where(webhooks.c.id == hook).values(secret=SECRET))
    share(quiet.alice, world.projects["beta"], quiet.bob)  # two events: added, accepted
    recorder = Recorder()
    assert deliver_due(db, box, Retry(), recorder) == 1
    assert seal_clear_secrets(db, box) == 1
    assert seal_clear_secrets(db, box) == 0
    assert SECRET not in _stored_secret(db, hook)
    assert deliver_due(db, box, Retry(), recorder) == 1
    for _, body, headers in recorder.sent:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Spyglass-Signature"] == expected


def test_the_secret_key_file_setting(tmp_path: Path) -> None:
    key_file = tmp_path / "shared.key"
    settings = Settings(data_dir=tmp_path / "data", secret_key_file=str(key_file))
    with pytest.raises(SecretKeyError, match="cannot read the secret key file"):
        SecretBox.of(settings)
    key_file.write_text("not a key\n")
    with pytest.raises(SecretKeyError, match="must hold 32 bytes in base64"):
        SecretBox.of(settings)
    key_file.write_text(base64.b64encode(b"k" * 32).decode() + "\n")
    box = SecretBox.of(settings)
    assert box.key == b"k" * 32 and not (tmp_path / "data" / "secret.key").exists()
    assert SecretBox.of(settings).open(box.seal("a-secret-value", "id"), "id") == "a-secret-value"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://[::1]:9292/",
        "https://10.0.0.1/",
    ],
)
def test_webhooks_to_addresses_inside_the_cloud_are_refused(api: Callers, url: str) -> None:
    response = api.alice.post("/v2/webhooks", json={"url": url})
    assert response.status_code == 400, response.text
    assert "may not reach" in response.text


def test_allowed_networks_let_webhooks_reach_inside(settings: Settings, db: Database, world: World) -> None:
    with callers_with(settings, db, world, web_download_allowed_networks=("127.0.0.1/32",)) as local:
        assert local.alice.post("/v2/webhooks", json={"url": "http://127.0.0.1:8080/"}).status_code == 201
        assert local.alice.post("/v2/webhooks", json={"url": "http://10.0.0.1/"}).status_code == 400
