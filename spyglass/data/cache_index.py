"""The index of one node's image cache: which images it holds, and which are queued for it.

It lives beside the cached files, in a small SQLite file of the cache directory, not in the shared
database: each node caches on its own disk, and the worker processes of a node share the file
(WAL, so a download's hit is not held up by a reader). Glance keeps its cache index the same way.

The rows say what was verified when a file went in (size, md5 and multihash of its bytes); the
cache compares them with the image's record before it serves a file (spyglass.data.cache).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cached_images (
        image_id TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        checksum TEXT NOT NULL,
        os_hash_value TEXT NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        last_accessed REAL NOT NULL,
        last_modified REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS cached_images_lru ON cached_images (last_accessed)",
    "CREATE TABLE IF NOT EXISTS queued_images (image_id TEXT PRIMARY KEY, queued_at REAL NOT NULL)",
)


@dataclass(frozen=True)
class Entry:
    image_id: str
    size: int
    checksum: str
    os_hash_value: str
    hits: int = 0
    last_accessed: float = 0.0
    last_modified: float = 0.0

    def listed(self) -> dict[str, object]:
        """The entry as `GET /v2/cache` lists it (Glance's fields)."""
        return {
            "image_id": self.image_id,
            "hits": self.hits,
            "last_accessed": self.last_accessed,
            "last_modified": self.last_modified,
            "size": self.size,
        }


_COLUMNS = "image_id, size, checksum, os_hash_value, hits, last_accessed, last_modified"


class CacheIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                conn.execute(statement)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per call: callers are worker threads, and opening a local
        # SQLite file costs microseconds.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def entry(self, image_id: str) -> Entry | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM cached_images WHERE image_id = ?", (image_id,)
            ).fetchone()
        return Entry(*row) if row is not None else None

    def entries(self) -> list[Entry]:
        """Every cached image, most recently used first."""
        with self._connect() as conn:
            query = f"SELECT {_COLUMNS} FROM cached_images ORDER BY last_accessed DESC"
            rows = conn.execute(query).fetchall()
        return [Entry(*row) for row in rows]

    def hit(self, image_id: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE cached_images SET hits = hits + 1, last_accessed = ? WHERE image_id = ?",
                (time.time(), image_id),
            )

    def install(self, entry: Entry, max_size: int) -> list[str]:
        """Record `entry` (its file is in place), first forgetting the least recently used other
        entries until it fits within `max_size` bytes; the ids forgotten, whose files must go."""
        now = time.time()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT image_id, size FROM cached_images WHERE image_id != ? ORDER BY last_accessed",
                (entry.image_id,),
            ).fetchall()
            used = sum(size for _, size in rows)
            evicted = []
            for image_id, size in rows:
                if used + entry.size <= max_size:
                    break
                evicted.append(image_id)
                used -= size
            conn.executemany("DELETE FROM cached_images WHERE image_id = ?", [(i,) for i in evicted])
            conn.execute(
                f"INSERT OR REPLACE INTO cached_images ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?)",
                (entry.image_id, entry.size, entry.checksum, entry.os_hash_value, now, now),
            )
            conn.execute("DELETE FROM queued_images WHERE image_id = ?", (entry.image_id,))
        return evicted

    def forget(self, image_id: str) -> bool:
        """Drop the image's entry; whether there was one."""
        with self._connect() as conn:
            return conn.execute("DELETE FROM cached_images WHERE image_id = ?", (image_id,)).rowcount > 0

    def forget_all(self) -> list[str]:
        with self._transaction() as conn:
            ids = [row[0] for row in conn.execute("SELECT image_id FROM cached_images")]
            conn.execute("DELETE FROM cached_images")
        return ids

    def queue(self, image_id: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO queued_images (image_id, queued_at) VALUES (?, ?)",
                (image_id, time.time()),
            )

    def queued(self) -> list[str]:
        """The queued image ids, in the order they will be cached."""
        with self._connect() as conn:
            rows = conn.execute("SELECT image_id FROM queued_images ORDER BY queued_at, image_id").fetchall()
        return [row[0] for row in rows]

    def unqueue(self, image_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM queued_images WHERE image_id = ?", (image_id,)).rowcount > 0

    def unqueue_all(self) -> int:
        with self._connect() as conn:
            return conn.execute("DELETE FROM queued_images").rowcount
