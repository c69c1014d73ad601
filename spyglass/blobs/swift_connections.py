"""Connections to Swift for spyglass.blobs.swift: a pool of python-swiftclient connections sharing
one token (tempauth v1) or one keystoneauth session (Keystone v3)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from swiftclient import ClientException, Connection

if TYPE_CHECKING:
    from spyglass.blobs.configs import SwiftConfig


class ConnectionPool:
    """swiftclient connections are not thread-safe: each operation borrows one. New connections
    start from the token the pool last saw, so threads do not each authenticate again."""

    def __init__(self, config: SwiftConfig) -> None:
        self._config = config
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._auth: tuple[str | None, str | None] = (config.storage_url, None)
        self._session: Any = _keystone_session(config) if config.auth_version == "3" else None

    def _new(self) -> Connection:
        c = self._config
        storage_url, token = self._auth
        return Connection(
            authurl=c.auth_url,
            user=c.user,
            key=c.key,
            auth_version=c.auth_version,
            preauthurl=storage_url,
            preauthtoken=token,
            session=self._session,
            os_options={"region_name": c.region_name, "endpoint_type": c.interface},
            retries=c.retries,
            timeout=c.timeout,
            cacert=c.cacert,
            insecure=c.insecure,
        )

    def take(self, *, retries: bool = True) -> Connection:
        with self._lock:
            conn = self._idle.pop() if self._idle else self._new()
        # A streamed body cannot be sent twice, so its PUT must not be retried.
        conn.retries = self._config.retries if retries else 0
        if self._session is not None and conn.token:
            # keystoneauth renews a token about to expire; a streamed PUT cannot recover from a 401.
            conn.token = self._session.get_token()
        return conn

    def give_back(self, conn: Connection, *, broken: bool = False) -> None:
        if broken:
            conn.close()  # the next request opens a fresh HTTP connection, with the same token
        with self._lock:
            if conn.token and self._session is None:
                self._auth = (conn.url, conn.token)
            self._idle.append(conn)

    @contextmanager
    def connection(self, *, retries: bool = True) -> Iterator[Connection]:
        conn = self.take(retries=retries)
        try:
            yield conn
        except ClientException as exc:
            # An HTTP error answer was read whole; only a failed exchange leaves the connection unusable.
            self.give_back(conn, broken=exc.http_status is None)
            raise
        except BaseException:
            self.give_back(conn, broken=True)
            raise
        self.give_back(conn)


def _keystone_session(config: SwiftConfig) -> Any:
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    auth = v3.Password(
        auth_url=config.auth_url,
        username=config.user,
        password=config.key,
        project_name=config.project_name,
        user_domain_name=config.user_domain_name,
        project_domain_name=config.project_domain_name,
    )
    verify: bool | str = config.cacert or not config.insecure
    return session.Session(auth=auth, verify=verify, timeout=config.timeout)
