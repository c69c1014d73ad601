"""The database handle's connections: single reads without a transaction, transactions after them,
pooled PostgreSQL connections checked only when they sat idle, and which writes count as identity
changes."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import Executable, create_engine, delete, select, text, update
from sqlalchemy.pool import NullPool

from spyglass.db import engine as engine_module
from spyglass.db import upsert
from spyglass.db.engine import Database
from spyglass.db.tables import image_members, images, projects, roles, tokens, users


def _in_transaction(db: Database) -> list[bool]:
    """Whether a statement of read_one_statement, then of read, ran inside a transaction."""
    seen = []
    for opened in (db.read_one_statement, db.read):
        with opened() as conn:
            conn.exec_driver_sql("SELECT 1")
            dbapi = conn.connection.dbapi_connection
            if db.is_sqlite:
                seen.append(bool(dbapi.in_transaction))  # type: ignore[union-attr]
            else:
                seen.append(dbapi.info.transaction_status != 0)  # type: ignore[union-attr]  # 0: IDLE
    return seen


def test_a_single_read_opens_no_transaction_and_a_read_after_it_does(db: Database) -> None:
    assert _in_transaction(db) == [False, True]
    # Twice: the connection the single read used went back to the pool in transaction mode.
    assert _in_transaction(db) == [False, True]
    if not db.is_sqlite:
        with db.read() as conn:
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"


def _backend(db: Database) -> int:
    with db.read() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert isinstance(pid, int)
    return pid


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL connections only")
    db.engine.dispose()
    first = _backend(db)
    assert _backend(db) == first  # one pooled connection, used again
    admin = create_engine(db.url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
    admin.dispose()
    # "Idle for a while" is any time at all here: the checkout finds the dead connection.
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    second = _backend(db)
    assert second != first
    with db.read_one_statement() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_only_a_connection_that_sat_idle_is_checked(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL connections only")
    pings: list[object] = []
    ping = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda dbapi: pings.append(dbapi) or ping(dbapi))
    db.engine.dispose()
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    first = _backend(db)  # opened just now: not checked
    assert _backend(db) == first  # back in the pool for less than the idle time: not checked
    assert pings == []
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(db) == first  # idle longer than that: checked, alive, used
    assert len(pings) == 1


def _counts(db: Database, *statements: Executable | str) -> bool:
    """Did one write transaction of these statements count as an identity change?"""
    before = db.identity_commits
    with db.write() as conn:
        for statement in statements:
            if isinstance(statement, str):
                conn.exec_driver_sql(statement)
            else:
                conn.execute(statement)
    return db.identity_commits == before + 1


def test_writes_count_as_identity_changes_where_the_generation_triggers_fire(db: Database) -> None:
    migration = importlib.import_module("spyglass.db.migrations.versions.0011_identity_generation")
    assert engine_module.IDENTITY_CHANGES == migration.WATCHED
    nothing = "none"
    assert not _counts(db, update(images).where(images.c.id == nothing).values(name="x"))
    assert not _counts(db, delete(image_members).where(image_members.c.image_id == nothing))
    assert not _counts(db, text("SELECT 1"), select(users.c.id).where(users.c.id == nothing))
    before = db.identity_commits
    with db.write() as conn, conn.begin_nested():
        conn.execute(update(images).where(images.c.id == nothing).values(name="x"))
    assert db.identity_commits == before
    # A revoked token, a user or role changed: what the triggers move the generation for.
    assert _counts(db, delete(tokens).where(tokens.c.token_hash == nothing))
    assert _counts(db, update(users).where(users.c.id == nothing).values(enabled=False))
    assert _counts(db, select(images.c.id), delete(roles).where(roles.c.id == nothing))
    # An upsert may update: Keystone's projects copied (spyglass.sharing.project_sync_queries).
    project = upsert.insert(db.engine.dialect.name, projects).values(
        id=nothing, name=nothing, domain_id="default", enabled=True
    )
    assert _counts(db, project.on_conflict_do_update(index_elements=[projects.c.id], set_={"enabled": True}))
    # SQL text may change anything.
    assert _counts(db, "UPDATE images SET name = 'x' WHERE id = 'none'")
    assert _counts(db, text("DELETE FROM images WHERE id = 'none'"))
    # A rolled-back change does not count, and does not make the next write count.
    before = db.identity_commits
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute(update(users).where(users.c.id == nothing).values(enabled=False))
        raise RuntimeError
    assert db.identity_commits == before
    assert not _counts(db, update(images).where(images.c.id == nothing).values(name="x"))
