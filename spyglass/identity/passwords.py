"""Password hashing with Argon2id, and checking a password in constant time whether or not a user exists."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
