"""Each project's count of images (`project_image_counts`, migration 0017), which the
image_count_total quota reads: kept by triggers on `images`, it must equal a count of the images
themselves after any write, whoever writes (the service, or plain SQL), on SQLite and PostgreSQL;
the migration counts what is there already; and a create's check is one statement more than a
create without limits, whatever the project's size."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, insert, select, text, update

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.db.migrate import upgrade
from spyglass.db.tables import images, project_image_counts
from spyglass.errors import QuotaExceeded
from spyglass.identity import limits as identity_limits
from spyglass.identity.services import IMAGE
from spyglass.images import catalog, states
from spyglass.images.quotas import ENFORCED, OFF, Quotas
from tests.api.helpers import create
from tests.api.test_authentication import Statements
from tests.conftest import POSTGRES, Callers, World, _database_url, _postgres_admin, _recreate
from tests.data.test_quota_concurrency import _register

OWNERS = ("p-one", "p-two", "p-three", None)


def _counted(conn: Connection) -> dict[str, int]:
    """What the triggers must keep: a count of the images themselves."""
    rows = conn.execute(
        select(images.c.owner, images.c.id).where(
            images.c.owner.is_not(None), images.c.status.not_in((states.KILLED, states.DELETED))
        )
    )
    found: dict[str, int] = {}
    for owner, _ in rows:
        found[owner] = found.get(owner, 0) + 1
    return found


def _kept(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(project_image_counts.c.project_id, project_image_counts.c.images))
    return {project: count for project, count in rows if count}


def _image(owner: str | None, status: str) -> dict[str, object]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return {
        "id": str(uuid.uuid4()),
        "owner": owner,
        "status": status,
        "visibility": "private",
        "min_disk": 0,
        "min_ram": 0,
        "protected": False,
        "os_hidden": False,
        "created_at": now,
        "updated_at": now,
    }


def _random_writes(db: Database, seed: int, steps: int) -> None:
    """Inserts, status and owner changes (one or several rows at once) and deletes, as plain SQL."""
    rng = random.Random(seed)
    ids: list[str] = []
    for _ in range(steps):
        with db.write() as conn:
            action = rng.choice(("insert", "insert", "status", "owner", "both", "many", "delete"))
            if action == "insert" or not ids:
                row = _image(rng.choice(OWNERS), rng.choice(states.ALL))
                conn.execute(insert(images).values(**row))
                ids.append(str(row["id"]))
            elif action == "delete":
                conn.execute(delete(images).where(images.c.id == ids.pop(rng.randrange(len(ids)))))
            elif action == "many":
                owner = rng.choice(OWNERS)
                conn.execute(
                    update(images).where(images.c.owner == owner).values(status=rng.choice(states.ALL))
                )
            else:
                values: dict[str, object] = {}
                if action in ("status", "both"):
                    values["status"] = rng.choice(states.ALL)
                if action in ("owner", "both"):
                    values["owner"] = rng.choice(OWNERS)
                conn.execute(update(images).where(images.c.id == rng.choice(ids)).values(**values))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_count_follows_every_kind_of_write(db: Database, world: World, seed: int) -> None:
    _random_writes(db, seed, 120)
    with db.read() as conn:
        counted, kept = _counted(conn), _kept(conn)
    assert kept == counted
    assert sum(counted.values()) > 0


def test_the_count_follows_the_service(api: Callers, db: Database, world: World) -> None:
    made = [create(api.alice)["id"] for _ in range(3)]
    assert api.alice.delete(f"/v2/images/{made[0]}").status_code == 204
    create(api.bob)
    with db.read() as conn:
        kept = _kept(conn)
        assert kept == _counted(conn)
    assert kept[world.projects["alpha"]] == 2


def test_a_create_checks_its_count_in_the_read_of_the_new_image(db: Database, world: World) -> None:
    alice = RequestContext("alice", world.projects["alpha"], frozenset({"member"}))
    for n in range(30):  # the check costs the same however many images the project has
        catalog.create_image(db, alice, {"name": f"i{n}"}, quotas=OFF)
    with Statements(db.engine, this_thread=True) as off:
        catalog.create_image(db, alice, {"name": "off"}, quotas=OFF)
    _register(db, "image_count_total", 100)
    with Statements(db.engine, this_thread=True) as on:
        catalog.create_image(db, alice, {"name": "on"}, quotas=ENFORCED)
    assert len(on.seen) == len(off.seen), on.seen
    checks = [s for s in on.seen if "project_image_counts" in s]
    assert len(checks) == 1 and "registered_limits" in checks[0] and "image_tags" in checks[0]


@pytest.mark.parametrize(
    ("limits", "region", "allowed"),
    [
        ({None: 5, "RegionOne": 2}, "RegionOne", 2),  # the region's limit before the one of no region
        ({None: 2, "RegionOne": 5}, "RegionTwo", 2),  # another region's does not apply
        ({None: 3, "RegionOne": -1}, "RegionOne", None),  # -1: unlimited
        ({"RegionOne": 4, "project": 1}, "RegionOne", 1),  # the project's own limit before the default
    ],
)
def test_the_count_check_reads_the_limit_keystone_would(
    db: Database, world: World, limits: dict[str | None, int], region: str, allowed: int | None
) -> None:
    admin = RequestContext("admin", "admin", frozenset({"admin", "member", "reader"}))
    alice = RequestContext("alice", world.projects["alpha"], frozenset({"member"}))
    for where, value in limits.items():
        if where == "project":
            continue
        entry = {"service_id": IMAGE.id, "resource_name": "image_count_total", "default_limit": value}
        registered = {"registered_limits": [{**entry, **({"region_id": where} if where else {})}]}
        identity_limits.create_registered_limits(db, admin, "RegionOne", registered)
    if "project" in limits:
        entry = {"service_id": IMAGE.id, "project_id": alice.project_id, "resource_name": "image_count_total"}
        own = {"limits": [{**entry, "region_id": "RegionOne", "resource_limit": limits["project"]}]}
        identity_limits.create_limits(db, admin, "RegionOne", own)
    created = 0
    for _ in range(6):
        try:
            catalog.create_image(db, alice, {}, quotas=Quotas(region=region))
        except QuotaExceeded:
            break
        created += 1
    assert created == (6 if allowed is None else allowed)


@pytest.fixture
def blank_database(tmp_path: Path) -> Iterator[Database]:
    """An empty database of its own, to migrate step by step."""
    if not POSTGRES:
        database = Database(f"sqlite:///{tmp_path / 'counts.db'}")
        yield database
        database.dispose()
        return
    name = f"spyglass_counts_{uuid.uuid4().hex[:12]}"
    admin = _postgres_admin()
    _recreate(admin, name)
    database = Database(_database_url(name))
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_the_migration_counts_the_images_there_already(blank_database: Database) -> None:
    upgrade(blank_database, "0016")
    rows = [_image(owner, status) for owner in OWNERS for status in states.ALL]
    with blank_database.write() as conn:
        conn.execute(insert(images), rows)
    upgrade(blank_database)
    with blank_database.read() as conn:
        counted = _counted(conn)
        assert _kept(conn) == counted
    assert counted == {owner: len(states.ALL) - 2 for owner in OWNERS if owner}
    _random_writes(blank_database, 4, 60)
    with blank_database.read() as conn:
        assert _kept(conn) == _counted(conn)


@pytest.mark.skipif(not POSTGRES, reason="a node writing while another migrates: PostgreSQL")
def test_an_image_written_while_the_migration_runs_is_counted(blank_database: Database) -> None:
    """A node of the previous version inserts an image and commits only once the migration waits
    for it: the migration counts it (it locks `images` before counting)."""
    upgrade(blank_database, "0016")
    old_node = Database(blank_database.url)
    migrated = threading.Event()
    with old_node.engine.connect() as conn:
        conn.execute(insert(images).values(**_image("p-one", states.ACTIVE)))  # not committed yet

        def migrate() -> None:
            upgrade(blank_database)
            migrated.set()

        thread = threading.Thread(target=migrate)
        thread.start()
        _wait_for_a_lock_wait(old_node)
        conn.commit()
    thread.join(60)
    old_node.dispose()
    assert migrated.is_set()
    with blank_database.read() as conn:
        assert _kept(conn) == _counted(conn) == {"p-one": 1}


def _wait_for_a_lock_wait(db: Database) -> None:
    """Until a session of the database waits for a lock (the migration, for the old node's)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(600):
        with db.read() as conn:
            if conn.execute(waiting).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the migration never waited for the uncommitted image")


@pytest.mark.skipif(bool(POSTGRES), reason="SQLite's conflict clauses")
def test_an_insert_or_replace_keeps_the_count(db: Database, world: World) -> None:
    """The conflict clause of a statement that fires the triggers overrides theirs in SQLite: an
    operator's INSERT OR REPLACE or OR ABORT must neither reset the count nor fail."""
    rows = [_image("p-one", states.ACTIVE) for _ in range(3)]
    with db.write() as conn:
        conn.execute(insert(images).prefix_with("OR ABORT"), rows[:2])
        conn.execute(insert(images).prefix_with("OR REPLACE"), rows[1:])
    with db.read() as conn:
        assert _kept(conn) == _counted(conn) == {"p-one": 3}
