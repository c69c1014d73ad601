"""The per-worker token cache: remembered while the identity generation stands still, asked again
after `fresh_seconds` or after this process's own writes to identity, refused once the generation moved."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, update

from spyglass.db.engine import Database
from spyglass.db.tables import images, users
from spyglass.errors import Unauthorized
from spyglass.identity.token_cache import TokenCache
from spyglass.timeutil import utcnow
from tests.conftest import World

IMAGE = {
    "name": "x",
    "status": "queued",
    "visibility": "private",
    "created_at": utcnow(),
    "updated_at": utcnow(),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _disable_behind_its_back(settings_db: Database, user_id: str) -> None:
    """A change made through another Database (another node): this process's commits do not move."""
    with settings_db.write() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(enabled=False))


def test_a_remembered_caller_is_refused_once_the_generation_moves(db: Database, world: World) -> None:
    clock = Clock()
    cache = TokenCache(db, fresh_seconds=0.5, clock=clock)
    token = world.tokens["alice"]
    assert cache.remembered(token) is None
    assert cache.authenticate(token).user_id == world.users["alice"]
    assert cache.remembered(token) is not None
    other_node = Database(db.url)
    try:
        _disable_behind_its_back(other_node, world.users["alice"])
    finally:
        other_node.dispose()
    # Within fresh_seconds the worker may still answer from memory...
    clock.now += 0.4
    assert cache.remembered(token) is not None
    # ...past it, it reads the generation again, and the token again.
    clock.now += 0.2
    assert cache.remembered(token) is None
    with pytest.raises(Unauthorized):
        cache.authenticate(token)


def test_a_write_through_this_process_counts_at_once(db: Database, world: World) -> None:
    cache = TokenCache(db, clock=Clock())
    token = world.tokens["bob"]
    cache.authenticate(token)
    assert cache.remembered(token) is not None
    with db.write() as conn:
        conn.execute(update(users).where(users.c.id == world.users["bob"]).values(enabled=False))
    assert cache.remembered(token) is None
    with pytest.raises(Unauthorized):
        cache.authenticate(token)


def test_a_write_to_images_keeps_the_cache_and_sql_text_that_writes_counts(
    db: Database, world: World
) -> None:
    clock = Clock()
    cache = TokenCache(db, clock=clock)
    token = world.tokens["carol"]
    first = cache.authenticate(token)
    with db.write() as conn:
        conn.execute(insert(images).values(id=str(uuid.uuid4()), owner=world.projects["alpha"], **IMAGE))
    assert cache.remembered(token) is first
    # An operator's SQL may change anything: the generation is read again, the token is not.
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE images SET name = 'x' WHERE id = 'none'")
    assert cache.remembered(token) is None
    assert cache.authenticate(token) is first
    assert cache.remembered(token) is first


def test_unknown_tokens_are_never_remembered(db: Database) -> None:
    cache = TokenCache(db)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            cache.authenticate("not-a-token")
        assert cache.remembered("not-a-token") is None
