"""A worker's memory of the tokens it validated: token hash -> caller, trusted only while the
identity generation has not moved.

Validating a token reads the token, its user, scope and roles in one statement
(token_queries.token_rows), together with the identity generation: a counter that database
triggers move on in the same transaction as every change that can refuse a token or change its
caller (migration 0011). The caller is kept here under the token's SHA-256, with the generation it
was read at, and answered from memory while both hold:

- the entry's generation is the last one read, by a read that started at most `fresh_seconds` ago
  (0.5 s): a change committed on any node is seen by every worker within that time, since the next
  request after it reads the generation again (one small statement) before trusting anything;
- this process committed no write to what a token stands for since that read started
  (Database.identity_commits): a change made through this worker counts on its very next request,
  while its writes to images and members leave the entries as they were.

An expired token is refused from memory by its own expiry time. Unknown or refused tokens are never
remembered. Image members are not identity and are never cached: image queries read them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.identity import token_info
from spyglass.identity.token_info import token_hash

FRESH_SECONDS = 0.5
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    ctx: RequestContext
    expires: float  # seconds since the epoch
    generation: int


@dataclass(frozen=True)
class _Seen:
    """The last generation read: when that read started, and the process's commits by then."""

    generation: int | None = None
    started: float = float("-inf")
    commits: int = -1


class TokenCache:
    def __init__(
        self,
        db: Database,
        *,
        fresh_seconds: float = FRESH_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._fresh_seconds = fresh_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._seen = _Seen()
        self._lock = threading.Lock()

    def remembered(self, secret: str) -> RequestContext | None:
        """The caller, from memory and without blocking; None when the database must be asked."""
        entry = self._entries.get(token_hash(secret))
        if entry is None or not self._fresh() or not self._holds(entry):
            return None
        return entry.ctx

    def authenticate(self, secret: str) -> RequestContext:
        """The caller; may read the database (in the calling thread). Raises Unauthorized."""
        key = token_hash(secret)
        entry = self._entries.get(key)
        if entry is not None and self._holds(entry):
            if not self._fresh():
                self._read_generation()
            if self._fresh() and self._holds(entry):
                return entry.ctx
        started, commits = self._clock(), self._db.identity_commits
        info, generation = token_info.authenticate_request(self._db, secret)
        self._learn(generation, started, commits)
        ctx = info.context()
        expires = info.expires_at.replace(tzinfo=UTC).timestamp()
        self._remember(key, _Entry(ctx, expires, generation))
        return ctx

    def _fresh(self) -> bool:
        seen = self._seen
        return (
            seen.commits == self._db.identity_commits and self._clock() - seen.started <= self._fresh_seconds
        )

    def _holds(self, entry: _Entry) -> bool:
        return entry.generation == self._seen.generation and entry.expires > time.time()

    def _read_generation(self) -> None:
        started, commits = self._clock(), self._db.identity_commits
        self._learn(token_info.read_generation(self._db), started, commits)

    def _learn(self, generation: int, started: float, commits: int) -> None:
        """Take a generation read that started at `started`, unless a later read was taken already."""
        with self._lock:
            if started < self._seen.started:
                return
            if generation != self._seen.generation:
                self._entries = {k: e for k, e in self._entries.items() if e.generation == generation}
            self._seen = _Seen(generation, started, commits)

    def _remember(self, key: str, entry: _Entry) -> None:
        with self._lock:
            if len(self._entries) >= self._max_entries:
                # The oldest entry goes (dicts keep insertion order).
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = entry
