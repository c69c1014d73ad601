"""Keystone's project lifecycle from its message bus, for identity = "keystone".

Keystone announces `identity.project.deleted` and `identity.project.updated` (among others) on its
exchange (`keystone`) and topic (`notifications`) when its notifications driver is on
(keystone.conf `[oslo_messaging_notifications] driver = messagingv2`). Its `[DEFAULT]
notification_format` is `cadf` by default, a CADF event whose `target.id` is the project; the
older `basic` format is `{"resource_info": <project id>}`, which Keystone also puts in a CADF event.

A message says which project changed, not how, and anyone who can publish on the exchange can
send one. So it is never applied as it is: the project is looked up in Keystone with the service
session, and the rules of `spyglass projects sync` are applied to what Keystone answers for that
one project (spyglass.sharing.project_sync.apply_one): not found (404) -> its memberships removed
and its images made private; disabled -> its shares suspended; enabled again -> restored. Applying
a message twice changes nothing, so a message delivered again does no harm.

The nodes of one deployment listen with one pool name (`keystone_notifications_pool`): they share
one queue, bound to Keystone's exchange beside the queue its other consumers read, and each message
goes to one node. The listener runs in threads of the server process (oslo.messaging's threading
executor), started and stopped with the application. A broker out of reach never keeps the server
from serving: the listener waits for it, logs, and tries again. A message that names no project is
logged and dropped, and so is one that can never be applied (Keystone refuses the service user
(403), or answers something that is not the project); one that cannot be applied now (Keystone or
the database unreachable) is put back on the queue after a pause that grows, a bounded number of
times (`spyglass projects sync` catches up on what is dropped).
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from spyglass.audit.bus import oslo_messaging
from spyglass.db.engine import Database
from spyglass.identity.keystone import KeystoneUnavailable
from spyglass.identity.keystone_directory import (
    NO_PROJECT_READ,
    KeystoneDirectory,
    KeystoneRefused,
    UnexpectedAnswer,
)
from spyglass.settings import Settings
from spyglass.sharing.project_sync import SyncReport, apply_one, is_project_id

log = logging.getLogger(__name__)

EVENT_TYPES = r"^identity\.project\.(deleted|updated)$"
# Seconds between attempts at reaching the broker, and before a message that could not be applied
# is put back on the queue (which would otherwise bring it back at once).
RETRY_SECONDS = 5.0
# Seconds to wait for the broker when checking that it answers.
CONNECT_TIMEOUT = 5
# A message that cannot be applied now is put back at most this many times (by one node), after a
# pause that doubles from RETRY_SECONDS up to RETRY_MAX_SECONDS; then it is dropped.
RETRIES = 8
RETRY_MAX_SECONDS = 60.0
# The broker's failures are logged at WARNING the first time and then once in this many.
WARN_EVERY = 12
# oslo.messaging's rabbit driver connects to this port when the URL names none, TLS (ssl=1) or not.
AMQP_PORT = 5672


class MalformedNotification(ValueError):
    """A message that names no project in a form Keystone sends."""


def project_id_of(payload: Any) -> str:
    """The project a Keystone notification is about, in the `basic` or the `cadf` format."""
    if not isinstance(payload, dict):
        raise MalformedNotification(f"the payload is a {type(payload).__name__}, not an object")
    named = payload.get("resource_info")
    target = payload.get("target")
    target_id = target.get("id") if isinstance(target, dict) else None
    if named is None:
        named = target_id
    elif target_id is not None and target_id != named:
        raise MalformedNotification("resource_info and target.id name different projects")
    if not isinstance(named, str) or not named:
        raise MalformedNotification("neither resource_info nor target.id names a project")
    if not is_project_id(named):
        raise MalformedNotification(f"{named[:80]!r} is not a project id Keystone makes")
    return named


def apply_notification(db: Database, keystone: KeystoneDirectory, project_id: str) -> SyncReport:
    """What Keystone has now for this project, applied by the rules of `projects sync`. Raises
    KeystoneUnavailable when Keystone cannot tell: nothing is changed on a message's word alone."""
    return apply_one(db, project_id, keystone.project(project_id))


class ProjectEndpoint:
    """oslo.messaging's endpoint for Keystone's project notifications (INFO priority)."""

    filter_rule = oslo_messaging.NotificationFilter(event_type=EVENT_TYPES)

    def __init__(self, db: Database, keystone: KeystoneDirectory, stopping: threading.Event) -> None:
        self.db = db
        self.keystone = keystone
        self.stopping = stopping
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}  # project id -> times put back on the queue
        self._refused_told = False

    def info(
        self, ctxt: Any, publisher_id: str, event_type: str, payload: Any, metadata: Any
    ) -> Any:  # oslo.messaging's signature
        """None: done or dropped; REQUEUE: put back, to be tried again. Never raises: oslo.messaging
        would put the message back at once, again and again."""
        try:
            return self._handle(publisher_id, event_type, payload)
        except Exception:  # a bug or an answer nobody foresaw: dropped, not retried without end
            log.exception("dropped a %s notification from %s", event_type, publisher_id)
            return None

    def _handle(self, publisher_id: str, event_type: str, payload: Any) -> Any:
        try:
            project_id = project_id_of(payload)
        except MalformedNotification as exc:
            log.warning("dropped a %s notification from %s: %s", event_type, publisher_id, exc)
            return None
        try:
            report = apply_notification(self.db, self.keystone, project_id)
        except KeystoneRefused as exc:
            self._refused(event_type, project_id, exc.detail)
            return None
        except UnexpectedAnswer as exc:
            log.warning("dropped %s of project %s: %s", event_type, project_id, exc)
            return None
        except (KeystoneUnavailable, OperationalError, IntegrityError) as exc:
            # IntegrityError: another node copied the same project under the same name meanwhile.
            reason = exc.detail if isinstance(exc, KeystoneUnavailable) else type(exc).__name__
            return self._later(event_type, project_id, reason)
        with self._lock:
            self._attempts.pop(project_id, None)
        if report.deleted:
            log.info("project %s is gone from Keystone: memberships removed, images made private", project_id)
        if report.disabled:
            log.info("project %s is disabled in Keystone: its shares are suspended", project_id)
        if report.enabled:
            log.info("project %s is enabled again in Keystone: its shares are restored", project_id)
        return None

    def _refused(self, event_type: str, project_id: str, detail: str) -> None:
        with self._lock:
            told, self._refused_told = self._refused_told, True
        if not told:
            log.error("Keystone's project notifications cannot be applied: %s. %s", detail, NO_PROJECT_READ)
        log.debug("dropped %s of project %s: %s", event_type, project_id, detail)

    def _later(self, event_type: str, project_id: str, reason: str) -> Any:
        with self._lock:
            attempts = self._attempts.get(project_id, 0) + 1
            if attempts > RETRIES:
                self._attempts.pop(project_id, None)
            else:
                self._attempts[project_id] = attempts
        if attempts > RETRIES:
            log.error(
                "dropped %s of project %s after %d attempts (%s); `spyglass projects sync` applies it",
                event_type,
                project_id,
                RETRIES,
                reason,
            )
            return None
        log.warning("%s of project %s not applied yet (%s); kept for later", event_type, project_id, reason)
        self.stopping.wait(min(RETRY_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS))
        return oslo_messaging.NotificationResult.REQUEUE


class Listener:
    """Keystone's project notifications, read in background threads until `stop`."""

    def __init__(self, db: Database, keystone: KeystoneDirectory, settings: Settings) -> None:
        conf = importlib.import_module("oslo_config.cfg").ConfigOpts()
        conf([], project="spyglass", default_config_files=[], default_config_dirs=[])
        self.url = settings.keystone_listener_url
        self.conf = conf
        self.transport = oslo_messaging.get_notification_transport(conf, url=self.url)
        self._stopping = threading.Event()
        self._target = oslo_messaging.Target(
            topic=settings.keystone_notifications_topic, exchange=settings.keystone_notifications_exchange
        )
        self._endpoint = ProjectEndpoint(db, keystone, self._stopping)
        self._pool = settings.keystone_notifications_pool
        self._server: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="keystone-notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        self._stopping.set()
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()
            server.wait()
        self._thread.join(timeout)
        self.transport.cleanup()

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _run(self) -> None:
        # oslo.messaging's listener, once started, reconnects by itself; but starting it waits for
        # the broker without end, so it is started only once the broker answered.
        failures = 0
        while not self._stopping.is_set():
            try:
                self._reach_broker()
                server = self._new_server()
                server.start()
            except Exception as exc:  # any failure to reach or use the broker: try again later
                level = logging.WARNING if failures % WARN_EVERY == 0 else logging.DEBUG
                log.log(
                    level,
                    "Keystone's notifications cannot be read yet (%s; %d attempts); trying again",
                    exc,
                    failures + 1,
                )
                failures += 1
                self._stopping.wait(RETRY_SECONDS)
                continue
            with self._lock:
                if not self._stopping.is_set():
                    self._server = server
                    log.info("listening to Keystone's project notifications")
                    return
            server.stop()
            server.wait()
            return

    def _new_server(self) -> Any:
        return oslo_messaging.get_notification_listener(
            self.transport,
            [self._target],
            [self._endpoint],
            executor="threading",
            allow_requeue=True,
            pool=self._pool,
        )

    def _reach_broker(self) -> None:
        """Raise unless one of the URL's brokers accepts a connection (AMQP transports only)."""
        parsed = oslo_messaging.TransportURL.parse(self.conf, self.url)
        if parsed.transport not in ("rabbit", "amqp"):
            return
        kombu = importlib.import_module("kombu")
        # The URL's query overrides the driver's options, as oslo.messaging reads them.
        ssl = importlib.import_module("oslo_config.types").Boolean()(parsed.query.get("ssl", "false"))
        last: Exception | None = None
        for host in parsed.hosts:
            connection = kombu.Connection(
                hostname=host.hostname or "localhost",
                port=host.port or AMQP_PORT,
                userid=host.username or "guest",
                password=host.password or "guest",
                virtual_host=parsed.virtual_host or "/",
                connect_timeout=CONNECT_TIMEOUT,
                ssl=ssl,
            )
            try:
                connection.connect()
                return
            except Exception as exc:  # kombu's and the socket's errors alike
                last = exc
            finally:
                connection.release()
        raise ConnectionError(f"no broker of the transport URL answers: {last}")
