"""Images as objects in one OpenStack Swift container, through python-swiftclient.

A blob that ends within the writer's buffer (`SwiftConfig.buffer_size`) is PUT as one object at
commit. A larger one streams, as it arrives, into numbered segments of `segment_size` bytes in the
segment container (`<container>_segments`); commit PUTs a Static Large Object manifest under the
key. Each segment's PUT is one chunked request fed from a bounded queue by the writer, so memory per
upload stays at a few write chunks whatever the segment size. Nothing is visible under the key
before commit; abort deletes the segments already written and breaks off the one in flight.

Reads are ranged GETs. Deleting a large blob deletes its manifest and segments in one request
(`multipart-manifest=delete`); a commit over an older large blob deletes the older segments. Swift
and transport errors become BlobNotFound, BlobStoreFull (413: quota, 507: disks full) or OSError
here and nowhere else.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3
from swiftclient import ClientException, Connection

from spyglass.blobs.base import BlobNotFound, BlobStoreFull
from spyglass.blobs.configs import MiB, SwiftConfig
from spyglass.blobs.streamed_put import StreamedPut
from spyglass.blobs.swift_connections import ConnectionPool

READ_CHUNK = MiB
LISTING_LIMIT = 10_000
# Raised by requests and urllib3 beyond plain OSErrors (which pass the boundary as they are).
TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError)


def _translate(exc: ClientException, key: str, *, missing_is_not_found: bool) -> Exception:
    status = exc.http_status
    if status == 404 and missing_is_not_found:
        return BlobNotFound(key)
    if status in (413, 507):
        return BlobStoreFull(errno.ENOSPC, f"swift refused {key!r}: {status} {exc.http_reason}")
    return OSError(errno.EIO, f"swift: {exc}")


@contextmanager
def _swift_errors(key: str, *, missing_is_not_found: bool = True) -> Iterator[None]:
    """The driver boundary: no swiftclient, requests or urllib3 exception gets past it."""
    try:
        yield
    except ClientException as exc:
        raise _translate(exc, key, missing_is_not_found=missing_is_not_found) from exc
    except TRANSPORT_ERRORS as exc:
        raise OSError(errno.EIO, f"swift: {exc}") from exc


@dataclass(frozen=True)
class _Segment:
    name: str
    etag: str
    size: int


class SwiftWriter:
    def __init__(self, store: SwiftStore, key: str) -> None:
        self._store = store
        self._key = key
        self._config = store.config
        self._upload_id = uuid.uuid4().hex
        self._buffer = bytearray()
        self._segments: list[_Segment] = []
        self._current: StreamedPut | None = None
        self._current_name = ""
        self._closed = False

    def write(self, data: bytes | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a committed or aborted blob writer")
        if not self._segments and self._current is None:
            if len(self._buffer) + len(data) <= self._config.buffer_size:
                self._buffer += data
                return
            # Too big for one buffered object: from now on the blob streams as segments.
            buffered, self._buffer = self._buffer, bytearray()
            self._stream(memoryview(buffered))
        self._stream(memoryview(data))

    def _stream(self, view: memoryview) -> None:
        size = self._config.segment_size
        while view:
            if self._current is None:
                self._current_name = f"{self._key}/{self._upload_id}/{len(self._segments):08d}"
                self._current = self._store._start_segment(self._current_name)
            room = size - self._current.size
            with _swift_errors(self._key, missing_is_not_found=False):
                self._current.send(bytes(view[:room]))
            view = view[room:]
            if self._current.size == size:
                self._finish_segment()

    def _finish_segment(self) -> None:
        assert self._current is not None
        current, self._current = self._current, None
        with _swift_errors(self._key, missing_is_not_found=False):
            etag = current.finish()
        self._segments.append(_Segment(self._current_name, etag, current.size))

    def commit(self) -> None:
        if self._closed:
            raise ValueError("commit of a committed or aborted blob writer")
        try:
            if self._current is not None:
                self._finish_segment()
            if self._segments:
                self._store._put_manifest(self._key, self._segments)
            else:
                self._store._put_whole(self._key, bytes(self._buffer))
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._buffer = bytearray()
        self._segments = []  # the blob's now: a late abort() must not touch them

    def abort(self) -> None:
        self._closed = True
        self._buffer = bytearray()
        if self._current is not None:
            current, self._current = self._current, None
            current.cancel()
        segments, self._segments = self._segments, []
        self._store._delete_segments([s.name for s in segments])


class SwiftStore:
    def __init__(self, config: SwiftConfig) -> None:
        self.config = config
        self.name = config.name
        self._pool = ConnectionPool(config)
        self._containers_ready = False
        self._containers_lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------

    def writer(self, key: str) -> SwiftWriter:
        _check_key(key)
        self._ensure_containers()
        return SwiftWriter(self, key)

    def _ensure_containers(self) -> None:
        with self._containers_lock:
            if self._containers_ready:
                return
            container = self.config.container
            with _swift_errors(container, missing_is_not_found=False), self._pool.connection() as conn:
                conn.put_container(container)
                conn.put_container(self.config.segments)
            self._containers_ready = True

    def _start_segment(self, name: str) -> StreamedPut:
        def put(body: Iterator[bytes]) -> str:
            with self._pool.connection(retries=False) as conn:
                etag: str = conn.put_object(self.config.segments, name, contents=body)
            return etag

        return StreamedPut(put, idle_timeout=self.config.timeout)

    def _put_whole(self, key: str, data: bytes) -> None:
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        superseded = self._manifest_segments(key)
        with _swift_errors(key, missing_is_not_found=False), self._pool.connection() as conn:
            # A file object, so that swiftclient can rewind it to retry.
            conn.put_object(
                self.config.container, key, contents=io.BytesIO(data), content_length=len(data), etag=etag
            )
        self._delete_segments(superseded)

    def _put_manifest(self, key: str, segments: list[_Segment]) -> None:
        manifest = [
            {"path": f"/{self.config.segments}/{s.name}", "etag": s.etag, "size_bytes": s.size}
            for s in segments
        ]
        superseded = self._manifest_segments(key)
        with _swift_errors(key, missing_is_not_found=False), self._pool.connection() as conn:
            conn.put_object(
                self.config.container,
                key,
                contents=json.dumps(manifest),  # ASCII (escaped) str: swiftclient may resend it
                query_string="multipart-manifest=put",
            )
        self._delete_segments(superseded)

    def _is_large_object(self, key: str) -> bool:
        with _swift_errors(key), self._pool.connection() as conn:
            headers = conn.head_object(self.config.container, key)
        return str(headers.get("x-static-large-object", "")).lower() == "true"

    def _manifest_segments(self, key: str) -> list[str]:
        """The segments of the SLO now stored under `key`, which a new commit will orphan."""
        try:
            if not self._is_large_object(key):
                return []
            with _swift_errors(key), self._pool.connection() as conn:
                _, body = conn.get_object(self.config.container, key, query_string="multipart-manifest=get")
        except BlobNotFound:
            return []
        prefix = f"/{self.config.segments}/"
        return [e["name"][len(prefix) :] for e in json.loads(body) if e["name"].startswith(prefix)]

    def _delete_segments(self, names: list[str]) -> None:
        for name in names:
            self._delete_object(self.config.segments, name)

    def _delete_object(self, container: str, name: str, query_string: str | None = None) -> None:
        try:
            with _swift_errors(name), self._pool.connection() as conn:
                conn.delete_object(container, name, query_string=query_string)
        except BlobNotFound:
            pass

    # -- reading ---------------------------------------------------------------------------------

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            self.size(key)  # BlobNotFound for a missing blob, even for an empty range
            return iter(())
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        conn = self._pool.take()
        try:
            with _swift_errors(key):
                try:
                    _, body = conn.get_object(
                        self.config.container, key, resp_chunk_size=READ_CHUNK, headers=headers
                    )
                except ClientException as exc:
                    if exc.http_status != 416:
                        raise
                    body = None  # the range starts past the end
        except BaseException:
            self._pool.give_back(conn, broken=True)
            raise
        if body is None:
            self._pool.give_back(conn)
            return iter(())
        return self._stream(key, conn, body)

    def _stream(self, key: str, conn: Connection, body: Any) -> Iterator[bytes]:
        finished = False
        try:
            with _swift_errors(key):
                yield from body
            finished = True
        finally:
            if not finished:
                body.close()  # an unread response cannot be reused
            self._pool.give_back(conn, broken=not finished)

    def size(self, key: str) -> int:
        with _swift_errors(key), self._pool.connection() as conn:
            headers = conn.head_object(self.config.container, key)
        return int(headers["content-length"])

    def local_path(self, key: str) -> Path | None:
        return None

    def iter_keys(self) -> Iterator[str]:
        marker = ""
        while True:
            try:
                with _swift_errors(self.config.container), self._pool.connection() as conn:
                    _, listing = conn.get_container(self.config.container, marker=marker, limit=LISTING_LIMIT)
            except BlobNotFound:
                return  # no container yet: nothing was ever written
            if not listing:
                return
            for entry in listing:
                yield entry["name"]
            marker = listing[-1]["name"]

    # -- deleting --------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        try:
            large = self._is_large_object(key)
        except BlobNotFound:
            return
        # Deletes a manifest's segments with it, but refuses (with a 200) to delete a plain object.
        query = "multipart-manifest=delete" if large else None
        self._delete_object(self.config.container, key, query)


def _check_key(key: str) -> None:
    if not key or key.startswith("/"):
        raise ValueError(f"invalid blob key {key!r}")
