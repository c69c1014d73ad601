"""The rules of `spyglass projects sync` for one project (apply_one, what a message from Keystone's
bus leads to) and the local copy of Keystone's projects they keep, on the test database (SQLite, or
PostgreSQL with SPYGLASS_TEST_POSTGRES)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from spyglass.db.engine import Database
from spyglass.db.tables import domains, projects
from spyglass.identity.keystone_directory import KeystoneProject
from spyglass.sharing import project_sync_queries as q
from spyglass.sharing.project_sync import SyncReport, apply_one, is_project_id
from tests.conftest import POSTGRES, Callers, World
from tests.sharing.test_domain_shares import domain_id, member_rows, shared_with


def test_a_domain_entry_is_never_taken_for_a_project(api: Callers, world: World, db: Database) -> None:
    default = domain_id(api, "Default")
    entry = f"domain:{default}"
    image_id = shared_with(api.alice, entry, world.projects["beta"])
    before = member_rows(api.alice, image_id)
    assert entry in before
    with db.read() as conn:
        assert not q.is_known(conn, entry)
        assert q.is_known(conn, world.projects["beta"])
    # What a forged message naming the domain entry leads to once Keystone answers 404 for it.
    assert apply_one(db, entry, None) == SyncReport()
    assert member_rows(api.alice, image_id) == before


def test_one_project_is_known_as_the_whole_list_has_it(api: Callers, world: World, db: Database) -> None:
    default = domain_id(api, "Default")
    shared_with(api.alice, f"domain:{default}", world.projects["beta"])
    candidates = [*world.projects.values(), f"domain:{default}", default, "0" * 32]
    with db.read() as conn:
        listed = q.referenced_projects(conn) | set(q.mirrored_projects(conn))
        assert {c for c in candidates if q.is_known(conn, c)} == listed & set(candidates)
    assert f"domain:{default}" not in listed


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "..",
        "...",
        "a/b",
        "a:b",
        "domain:d1",
        "a b",
        " ab",
        "a\tb",
        "a\x00b",
        "a%2fb",
        "a?b",
        "a#b",
        "x" * 65,
    ],
)
def test_what_keystone_never_makes_is_no_project_id(value: str) -> None:
    assert not is_project_id(value)


@pytest.mark.parametrize("value", ["4aca8522ff424302ba2d996767af392c", "ldap-project_7", "a.b", "x" * 64])
def test_keystone_ids_and_others_of_its_alphabet_are_project_ids(value: str) -> None:
    assert is_project_id(value)


def test_a_domain_answered_as_a_project_is_not_copied(db: Database) -> None:
    # GET /v3/projects/<domain id> answers the domain acting as a project.
    acting = KeystoneProject("d" * 32, "somedomain", "<<keystone.domain.root>>", True, is_domain=True)
    assert apply_one(db, acting.id, acting) == SyncReport()
    with db.read() as conn:
        assert q.mirrored_project(conn, acting.id) is None
        assert conn.execute(select(domains.c.id).where(domains.c.id == acting.domain_id)).first() is None


def test_copying_a_project_twice_changes_only_its_enabled_flag(db: Database) -> None:
    with db.write() as conn:
        q.put_domain(conn, "e" * 32, "e" * 32, True, only_new=True)
        q.put_domain(conn, "e" * 32, "ignored", False, only_new=True)
        q.put_project(conn, "f" * 32, "fresh", "e" * 32, True)
        q.put_project(conn, "f" * 32, "fresh", "e" * 32, False)
    with db.read() as conn:
        assert conn.execute(
            select(domains.c.name, domains.c.enabled).where(domains.c.id == "e" * 32)
        ).one() == (
            "e" * 32,
            True,
        )
        assert conn.execute(select(projects.c.name).where(projects.c.id == "f" * 32)).scalar_one() == "fresh"
        assert q.mirrored_project(conn, "f" * 32) is False


@pytest.mark.skipif(
    not POSTGRES,
    reason="SQLite writers take the database's lock at BEGIN (Database.write): they never interleave",
)
def test_two_nodes_copying_one_new_project_at_once_both_succeed(db: Database) -> None:
    project = KeystoneProject("c" * 32, "racing", "b" * 32, True)
    failures: list[BaseException] = []
    first = db.engine.connect()
    first.begin()
    q.put_domain(first, project.domain_id, project.domain_id, True, only_new=True)
    q.put_project(first, project.id, project.name, project.domain_id, True)

    def second_node() -> None:
        try:
            apply_one(db, project.id, project)
        except BaseException as exc:  # what the test reports
            failures.append(exc)

    other = threading.Thread(target=second_node)
    other.start()
    # The second node's insert waits on the first's uncommitted row before the first commits.
    deadline = time.monotonic() + 30
    while not _waiting_on_a_lock(db):
        assert other.is_alive() and time.monotonic() < deadline, "the second node never waited"
        time.sleep(0.05)
    first.commit()
    first.close()
    other.join(30)
    assert failures == []
    with db.read() as conn:
        assert q.mirrored_project(conn, project.id) is True


def _waiting_on_a_lock(db: Database) -> bool:
    with db.read_one_statement() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return bool(waiting)
