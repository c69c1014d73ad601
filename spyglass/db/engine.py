"""The database handle: one engine, short read and write transactions.

SQLite allows one writer at a time. Rather than let concurrent requests collide and fail with
"database is locked", writes inside one process are serialized by a lock and open with
`BEGIN IMMEDIATE` (so a transaction never has to upgrade its lock half-way), and a busy timeout
covers writers in other processes. WAL mode lets readers proceed while a write is in progress.
PostgreSQL needs none of this and gets plain transactions.

A SQLite database file holds password hashes: it is made 0600 before SQLite opens it (SQLite gives
its -wal and -shm files the database file's mode), and an existing one is tightened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, create_engine, event, exc, make_url
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.pool import QueuePool, StaticPool

from spyglass.file_modes import private_file, tighten_file

SQLITE_BUSY_TIMEOUT_MS = 30_000


# Connections a Database keeps open: the default settings' threads (Settings.database_connections).
DEFAULT_CONNECTIONS = 18
# Beyond the pool, connections opened for a moment rather than waiting (none with a pool as large
# as the threads that can hold one).
OVERFLOW = 8
# A PostgreSQL connection back in the pool for longer than this is checked (an empty statement)
# before it is handed out again; one in steady use is not: a round trip per request saved.
PING_AFTER_IDLE_SECONDS = 1.0

# The changes on which database triggers move the identity generation (migration 0011): what can
# refuse a token or change its caller. Cascades into these tables start from one of them too.
IDENTITY_CHANGES = {
    "tokens": ("UPDATE", "DELETE"),
    "users": ("UPDATE", "DELETE"),
    "projects": ("UPDATE", "DELETE"),
    "domains": ("UPDATE", "DELETE"),
    "roles": ("UPDATE", "DELETE"),
    "role_assignments": ("INSERT", "UPDATE", "DELETE"),
    "role_implications": ("INSERT", "UPDATE", "DELETE"),
}
# Statements in SQL text that change no table. Any other text (an operator's UPDATE) counts as
# an identity change: only SQLAlchemy's own INSERT, UPDATE and DELETE name their table for sure.
_CHANGE_NOTHING = ("SELECT", "BEGIN", "PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK", "ANALYZE")
# Set in a connection's info by a statement that may move the identity generation.
_IDENTITY_CHANGED = "spyglass.identity_changed"


class Database:
    def __init__(self, url: str, *, connections: int = DEFAULT_CONNECTIONS) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self.engine = _make_engine(url, connections)
        # Write transactions this process committed that may have moved the identity generation:
        # a cache of what the database said (spyglass.identity.token_cache) learns from it that
        # this process changed something. A write to images or members does not count.
        self.identity_commits = 0
        self._commits_lock = threading.Lock()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN")
            yield conn
            conn.rollback()

    @contextmanager
    def read_one_statement(self) -> Iterator[Connection]:
        """A connection for a single read, which is consistent by itself: no BEGIN and no ROLLBACK,
        round trips that token validation and showing an image can do without (SQLite's driver
        opens no transaction for a SELECT; PostgreSQL's connection is in autocommit meanwhile, and
        back in READ COMMITTED transactions when it returns to the pool)."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
            conn.rollback()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A short write transaction, committed on success and rolled back on any error."""
        if self._write_lock is None:
            with self.engine.connect() as conn:
                _watch_identity_changes(conn)
                with conn.begin():
                    yield conn
                self._committed(conn)
            return
        with self._write_lock, self.engine.connect() as conn:
            _watch_identity_changes(conn)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            self._committed(conn)

    def _committed(self, conn: Connection) -> None:
        if conn.info.pop(_IDENTITY_CHANGED, False):
            with self._commits_lock:
                self.identity_commits += 1

    def refresh_statistics(self) -> None:
        """Let the query planner know the table sizes.

        Without statistics SQLite guesses that `visibility = 'shared'` matches a handful of rows and
        may walk that index for a list that should start from the caller's few member rows.
        PostgreSQL's autovacuum analyzes too, but only some time after a bulk change.
        """
        with self.write() as conn:
            conn.exec_driver_sql("ANALYZE")

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, connections: int) -> Engine:
    if not url.startswith("sqlite"):
        # Explicit, whatever the server's default: each statement sees what committed before it,
        # which spyglass.blob_refs relies on once it holds its content lock.
        engine = create_engine(
            url, pool_size=connections, max_overflow=OVERFLOW, isolation_level="READ COMMITTED"
        )
        _ping_when_idle(engine)
        return engine
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if url in ("sqlite://", "sqlite:///:memory:"):
        # One shared connection, or every checkout would see a different empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args=connect_args)
    else:
        _private_sqlite_files(url)
        engine = create_engine(
            url, poolclass=QueuePool, pool_size=connections, max_overflow=OVERFLOW, connect_args=connect_args
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy not issue its own BEGIN: we send BEGIN / BEGIN IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        # A row an INSERT OR REPLACE replaces fires the delete triggers (the image counts of
        # migration 0017) only with this on.
        cur.execute("PRAGMA recursive_triggers=ON")
        cur.close()

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, but only for a connection that sat in the pool for a while: one
    that came back a moment ago was answering then. A connection the server dropped in between
    (a restart) fails its statement once, and SQLAlchemy then discards every pooled connection
    older than that failure."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned")
        if returned is None or time.monotonic() - returned <= PING_AFTER_IDLE_SECONDS:
            return  # just opened, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool retries with a new connection, and drops the others opened before this.
            raise exc.InvalidatePoolError(f"connection check failed: {error}") from error


def _watch_identity_changes(conn: Connection) -> None:
    """Note in the write connection's info whether a statement may move the identity generation.
    The listener is the connection's own, gone when it closes: one on the engine would cost every
    read (most requests) its dispatch on each connect, about 5 % of a show's CPU."""
    conn.info.pop(_IDENTITY_CHANGED, None)
    event.listen(conn, "before_cursor_execute", _note_identity_change)


def _note_identity_change(
    conn: Connection,
    _cursor: Any,
    statement: str,
    _params: Any,
    context: ExecutionContext | None,
    _many: bool,
) -> None:
    if _may_change_identity(statement, context):
        conn.info[_IDENTITY_CHANGED] = True


def _may_change_identity(statement: str, context: Any) -> bool:
    """Can this statement move the identity generation? Yes for a change of IDENTITY_CHANGES and for
    SQL text that may change anything; no for a SELECT, a transaction's own statements, and
    SQLAlchemy's changes of other tables."""
    compiled = getattr(context, "compiled", None)
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        statement_made = compiled.statement  # type: ignore[union-attr]
        kinds = {"INSERT" if context.isinsert else "UPDATE" if context.isupdate else "DELETE"}
        if getattr(statement_made, "_post_values_clause", None) is not None:
            kinds.add("UPDATE")  # an upsert (ON CONFLICT): its update fires the UPDATE triggers
        name = getattr(getattr(statement_made, "table", None), "name", None)
        return not isinstance(name, str) or bool(kinds.intersection(IDENTITY_CHANGES.get(name, ())))
    if compiled is not None and not isinstance(compiled.statement, TextClause):
        return False  # a select, a savepoint: SQLAlchemy's constructs that are not a change
    return not statement.lstrip()[:9].upper().startswith(_CHANGE_NOTHING)


def _private_sqlite_files(url: str) -> None:
    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite reports that itself, when it first connects
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten_file(path.with_name(path.name + suffix))
