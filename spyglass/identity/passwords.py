"""Password hashing with Argon2id: checks that take as long for a missing user, and bounded at once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
from collections.abc import AsyncIterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from spyglass.errors import Busy

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    # Made on first use (not at import), with the same parameters as every stored hash.
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether the password matches. With no stored hash (no such user, or no password set) a dummy
    hash is checked all the same, so the answer takes as long as for a wrong password: a caller
    cannot tell a missing user from a wrong password by the time it takes."""
    if not stored_hash:
        _verify(_dummy_hash(), password)
        return False
    return _verify(stored_hash, password)


class CheckSlots:
    """At most `concurrency` password checks at once in this process, and `queue` more waiting.

    Argon2 is deliberately costly: unbounded, a login storm takes every core and the shared thread
    pool from image requests. Waiting happens here, on the event loop, not in a pool thread; a login
    beyond the queue is refused at once (Busy) rather than piling up."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._capacity = concurrency + queue
        self.admitted = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.admitted >= self._capacity:
            raise Busy("Too many logins in progress; try again shortly.", retry_after=1)
        self.admitted += 1
        try:
            async with self._semaphore:
                yield
        finally:
            self.admitted -= 1
