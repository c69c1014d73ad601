"""The real RabbitMQ of scripts/ensure-rabbitmq.sh, for the message bus tests: the broker, a virtual
host of each test's own (made with rabbitmqctl, so that tests running at once never see each
other's messages), and what the broker says of a queue."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def broker() -> str:
    """The broker's URL (the default virtual host), started or installed when absent."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "ensure-rabbitmq.sh")], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=120
    )
    return done.stdout


def new_vhost(broker: str) -> tuple[str, str]:
    """A new virtual host for guest: its name and its transport URL."""
    name = f"spyglass-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name, broker.rstrip("/") + "/" + name


@pytest.fixture
def vhost_url(broker: str) -> Iterator[str]:
    """A transport URL on a virtual host of this test's own."""
    name, url = new_vhost(broker)
    yield url
    rabbitmqctl("delete_vhost", name)


@dataclass(frozen=True)
class QueueState:
    consumers: int
    ready: int
    unacknowledged: int


def queue_state(url: str, queue: str) -> QueueState | None:
    """What the broker says of one queue of the URL's virtual host; None when it has no such queue."""
    vhost = url.rsplit("/", 1)[1] or "/"
    listed = rabbitmqctl(
        "list_queues", "-p", vhost, "--no-table-headers", "name", "consumers", "messages_ready",
        "messages_unacknowledged",
    )  # fmt: skip
    for line in listed.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] == queue:
            return QueueState(int(fields[1]), int(fields[2]), int(fields[3]))
    return None


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll until `check` holds; fail with `what` when it never does."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.3)
