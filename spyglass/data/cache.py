"""One node's local cache of image data held in remote stores (Swift, S3): Glance's image cache.

A download of an image whose data is in a remote store is served from the cache directory when the
image is there; otherwise the bytes are streamed from the store and written on the way into a file
of `incomplete/`, hashed as they go (md5 and the image's multihash). Only when the whole data came
through and its size, checksum and os_hash_value equal the image's is the file renamed into the
cache; anything else (the client gone, a short read, a store returning other bytes) discards it.
`PUT /v2/cache/{id}` queues an image instead, and a background round fills it the same way.

The cache never trusts itself: before a file is served, its index entry must name the image's
current size, checksum and os_hash_value and the file must have that size; otherwise the entry and
the file go and the data comes from the store again. A download always goes through the image's
authorization first (spyglass.data.transfer.prepare_download); the cache only changes where the
bytes come from. Deleting an image, or removing one of its locations, drops its file on this node
at once; the reconcile round drops, on every node, the files of images deleted elsewhere.

One writer per image: the file in `incomplete/` is held under an exclusive lock (flock) while it
is written, so concurrent downloads of an uncached image, from one worker process or several,
fill it once; the others only stream. The index (spyglass.data.cache_index) keeps the least
recently used order; installing a file first evicts until it fits in `image_cache_max_size`.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from queue import Queue

from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import transfer
from spyglass.data.cache_index import CacheIndex, Entry
from spyglass.db.engine import Database
from spyglass.errors import Invalid, NotFound
from spyglass.file_modes import FILE_MODE, private_dir
from spyglass.images import states
from spyglass.images.catalog import is_uuid, load_authorized
from spyglass.images.policy import Action, authorize
from spyglass.images.queries import ImageRecord, fetch_image

log = logging.getLogger(__name__)

# Files in `incomplete/` and in the cache that no index entry names are left alone this long (a
# fill renames its file before it records the entry; a crashed one leaves its file behind).
ORPHAN_SECONDS = 300
CLEAR_TARGETS = ("", "cache", "queue")
# Chunks handed over to a fill's thread and not yet written: the download runs ahead by this many.
PIPELINE_CHUNKS = 16


class ImageCache:
    """The cache directory of this node: `<image id>` files, `incomplete/`, and the index."""

    def __init__(self, root: Path, max_size: int) -> None:
        self.root = private_dir(root)
        self.incomplete = private_dir(root / "incomplete")
        self.max_size = max_size
        self.index = CacheIndex(root / "cache.db")

    def file(self, image_id: str) -> Path:
        if not is_uuid(image_id):  # never a path of the caller's choosing
            raise ValueError(f"not an image id: {image_id!r}")
        return self.root / image_id

    def lookup(self, record: ImageRecord, *, hit: bool = True) -> Path | None:
        """The cached file of the image's current data, or None. An entry that does not match the
        image, or whose file is missing or of another size (truncated), is dropped. A cache that
        fails (its disk, its index) answers None: the download then reads the store."""
        try:
            return self._lookup(record, hit)
        except (OSError, sqlite3.Error) as exc:
            log.warning("Image %s: image cache unavailable: %s", record.id, exc)
            return None

    def _lookup(self, record: ImageRecord, hit: bool) -> Path | None:
        entry = self.index.entry(record.id)
        if entry is None:
            return None
        path = self.file(record.id)
        if not _matches(entry, record) or _size(path) != record.size:
            log.warning("Image %s: cached file stale or truncated; dropped, to be fetched again", record.id)
            self.evict(record.id)
            return None
        if hit:
            self.index.hit(record.id)
        return path

    def filler(self, record: ImageRecord) -> Fill | None:
        """A fill of the image's data, or None when it cannot be cached or another download is
        filling it right now."""
        if not cacheable(record) or (record.size or 0) > self.max_size:
            return None
        try:
            return Fill.claim(self, record)
        except OSError as exc:
            log.warning("Image %s: not cached, the image cache is unavailable: %s", record.id, exc)
            return None

    def holds(self, image_id: str) -> bool:
        return self.index.entry(image_id) is not None or image_id in self.index.queued()

    def evict(self, image_id: str) -> bool:
        """Drop the image's entry and file; whether it was cached."""
        had = self.index.forget(image_id)
        _unlink(self.file(image_id))
        return had

    def clear(self) -> int:
        forgotten = self.index.forget_all()
        for image_id in forgotten:
            _unlink(self.file(image_id))
        return len(forgotten)

    def install(self, record: ImageRecord, written: Path) -> None:
        """Move a verified file into the cache and record it, evicting what no longer fits."""
        os.replace(written, self.file(record.id))
        entry = Entry(record.id, record.size or 0, record.checksum or "", record.os_hash_value or "")
        for evicted in self.index.install(entry, self.max_size):
            _unlink(self.file(evicted))


def cacheable(record: ImageRecord) -> bool:
    """Data the cache can verify: a size and both digests."""
    return bool(record.size and record.checksum and record.os_hash_value and record.os_hash_algo)


def _matches(entry: Entry, record: ImageRecord) -> bool:
    return (
        entry.size == record.size
        and entry.checksum == record.checksum
        and entry.os_hash_value == record.os_hash_value
    )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


class Fill:
    """The data of one image on its way into the cache: written and hashed in a thread of its own,
    beside the download that streams it (the download only hands each chunk over), then verified."""

    def __init__(self, cache: ImageCache, record: ImageRecord, fd: int, path: Path) -> None:
        self.cache, self.record, self.fd, self.path = cache, record, fd, path
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multi = hashlib.new(str(record.os_hash_algo))
        self.written = 0
        self.done = False
        self.failure: Exception | None = None
        self._pending: Queue[bytes | None] = Queue(maxsize=PIPELINE_CHUNKS)
        self._worker: threading.Thread | None = None

    @classmethod
    def claim(cls, cache: ImageCache, record: ImageRecord) -> Fill | None:
        path = cache.incomplete / record.id
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The holder before us may have renamed this very file into the cache (or removed it)
            # before releasing the lock: ours only if the name still leads to what we opened.
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        os.ftruncate(fd, 0)  # what a crashed fill left
        return cls(cache, record, fd, path)

    def tee(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks, unchanged, written into the fill on the way. The last one is held back until
        the file is installed: a client that has every byte finds the image cached. A failing cache
        (a full disk) never fails the download: the fill is dropped, the bytes flow."""
        try:
            held: bytes | None = None
            for chunk in chunks:
                self.write(chunk)
                if held is not None:
                    yield held
                held = chunk
            self.commit()
            if held is not None:
                yield held
        finally:
            self.abort()

    def write(self, chunk: bytes) -> None:
        if self.done:
            return
        if self._worker is None:
            name = f"cache fill {self.record.id}"
            self._worker = threading.Thread(target=self._drain, name=name, daemon=True)
            self._worker.start()
        self._pending.put(chunk)

    def _drain(self) -> None:
        while (chunk := self._pending.get()) is not None:
            if self.failure is not None:
                continue  # taken off the queue all the same, so that the download never waits
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view) :]
                self.md5.update(chunk)
                self.multi.update(chunk)
                self.written += len(chunk)
            except Exception as exc:  # whatever it is, this thread must keep emptying the queue
                self.failure = exc

    def _drained(self) -> None:
        if self._worker is not None:
            self._pending.put(None)
            self._worker.join()
            self._worker = None

    def commit(self) -> bool:
        """Install the file if its bytes are the image's data; whether they were."""
        if self.done:
            return False
        self._drained()
        record = self.record
        if self.failure is not None:
            log.warning("Image %s: not cached, writing the cache file failed: %s", record.id, self.failure)
            self.abort()
            return False
        if (self.written, self.md5.hexdigest(), self.multi.hexdigest()) != (
            record.size,
            record.checksum,
            record.os_hash_value,
        ):
            log.warning(
                "Image %s: not cached, the %d bytes read do not match its size and checksums",
                record.id,
                self.written,
            )
            self.abort()
            return False
        try:
            self.cache.install(record, self.path)
        except OSError as exc:
            log.warning("Image %s: not cached: %s", record.id, exc)
            self.abort()
            return False
        self._release()
        return True

    def abort(self) -> None:
        """Discard the file; safe to call more than once, and after a commit (then it does nothing)."""
        if self.done:
            return
        self._drained()
        _unlink(self.path)  # still under our lock: nobody else can have taken this name's file
        self._release()

    def _release(self) -> None:
        self.done = True
        os.close(self.fd)  # releases the lock


# The API: authorization first, as for every service call; then "not supported" where the cache
# is off, as Glance answers (404).


def _enabled(cache: ImageCache | None) -> ImageCache:
    if cache is None:
        raise NotFound("Caching via API is not supported at this site.")
    return cache


def state(db: Database, ctx: RequestContext, cache: ImageCache | None) -> dict[str, object]:
    """`GET /v2/cache`: the cached images (most recently used first) and the queue, in order."""
    authorize(ctx, Action.CACHE_LIST)
    cache = _enabled(cache)
    return {
        "cached_images": [entry.listed() for entry in cache.index.entries()],
        "queued_images": cache.index.queued(),
    }


def queue(db: Database, ctx: RequestContext, cache: ImageCache | None, image_id: str) -> None:
    """`PUT /v2/cache/{image_id}`: cache the image in the background."""
    with db.read() as conn:
        record = load_authorized(conn, ctx, image_id, Action.CACHE_IMAGE)
    cache = _enabled(cache)
    if record.status != states.ACTIVE:
        raise Invalid("Only images with status active can be targeted for queueing")
    cache.index.queue(record.id)


def delete(db: Database, ctx: RequestContext, cache: ImageCache | None, image_id: str) -> None:
    """`DELETE /v2/cache/{image_id}`: out of the cache and the queue. An image deleted meanwhile
    can still be removed from them (as in Glance); one that exists stays 404 to who cannot see it."""
    with db.read() as conn:
        try:
            load_authorized(conn, ctx, image_id, Action.CACHE_DELETE)
        except NotFound:
            gone = not is_uuid(image_id) or fetch_image(conn, image_id, None) is None
            if not gone or cache is None or not cache.holds(image_id):
                raise
            authorize(ctx, Action.CACHE_DELETE)
    cache = _enabled(cache)
    cache.evict(image_id)
    cache.index.unqueue(image_id)


def clear(db: Database, ctx: RequestContext, cache: ImageCache | None, target: str) -> None:
    """`DELETE /v2/cache`: the cached images, the queue, or (no header) both."""
    authorize(ctx, Action.CACHE_DELETE)
    cache = _enabled(cache)
    target = target.strip().lower()
    if target not in CLEAR_TARGETS:
        raise Invalid("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.")
    if target in ("", "cache"):
        cache.clear()
    if target in ("", "queue"):
        cache.index.unqueue_all()


def forget(cache: ImageCache | None, image_id: str) -> None:
    """The image was deleted, or lost a location, on this node: its cached file goes now."""
    if cache is not None and is_uuid(image_id):
        cache.evict(image_id)


# Background rounds (spyglass.background).


def prefetch(cache: ImageCache, db: Database, stores: StoreSet) -> int:
    """Cache the queued images, in order; how many went in."""
    done = 0
    for image_id in cache.index.queued():
        with db.read() as conn:
            record = fetch_image(conn, image_id, None)
        if record is None or record.status != states.ACTIVE or cache.lookup(record, hit=False):
            cache.index.unqueue(image_id)
            continue
        found = transfer.first_available(stores, record)
        # Data on a local disk is served from there: there is nothing to cache.
        if found is None or found[0].local_path(found[1]) is not None:
            cache.index.unqueue(image_id)
            continue
        fill = cache.filler(record)
        if fill is None:
            continue  # being filled by a download: it leaves the queue when installed
        try:
            for _chunk in fill.tee(found[0].read(found[1])):
                pass
        except Exception as exc:  # not retried every round: queue it again to try again
            log.warning("Image %s: pre-caching failed: %s", image_id, exc)
        if fill.done and cache.index.entry(image_id) is not None:
            done += 1
        cache.index.unqueue(image_id)
    return done


def reconcile(cache: ImageCache, db: Database) -> int:
    """Drop the entries of images deleted (or whose data changed) on any node, and leftover files;
    how many entries went."""
    dropped = 0
    for entry in cache.index.entries():
        with db.read() as conn:
            record = fetch_image(conn, entry.image_id, None)
        alive = record is not None and record.status in (states.ACTIVE, states.DEACTIVATED)
        if record is None or not alive or not _matches(entry, record):
            cache.evict(entry.image_id)
            dropped += 1
    _sweep_orphans(cache)
    return dropped


def _sweep_orphans(cache: ImageCache) -> None:
    listed = {entry.image_id for entry in cache.index.entries()}
    old = time.time() - ORPHAN_SECONDS
    for path in cache.root.iterdir():
        if is_uuid(path.name) and path.name not in listed and (_mtime(path) or time.time()) < old:
            _unlink(path)
    for path in cache.incomplete.iterdir():
        with suppress(FileNotFoundError):
            _sweep_incomplete(path, old)


def _sweep_incomplete(path: Path, old: float) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Removed under the lock, as a fill removes its own: never a file someone is writing.
        if os.fstat(fd).st_mtime < old:
            _unlink(path)
    except BlockingIOError:
        pass  # being written
    finally:
        os.close(fd)
