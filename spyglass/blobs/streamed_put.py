"""One HTTP upload whose body is produced by another thread, chunk by chunk.

The request runs in its own thread and pulls its (chunked) body from a small bounded queue that
`send` fills, so a caller can stream an object of any size through a client library that wants
the whole body as an iterator, holding only a few chunks. `cancel` makes the body raise, so the
request fails instead of completing and the server keeps nothing.
"""

from __future__ import annotations

import errno
import queue
import threading
from collections.abc import Callable, Iterator

# Chunks waiting for the request: the bound on memory besides the chunk being sent.
QUEUE_DEPTH = 2


class Cancelled(OSError):
    """Raised inside a streamed body so that its request fails instead of completing."""


_END = object()  # queued after the last chunk
_CANCEL = object()


class StreamedPut:
    """`put(body)` running in its own thread, its body fed by `send`; `finish` returns what `put`
    returned (an ETag) or raises what it raised."""

    def __init__(self, put: Callable[[Iterator[bytes]], str], idle_timeout: float) -> None:
        self.size = 0
        self._put = put
        self._idle_timeout = idle_timeout
        self._chunks: queue.Queue[bytes | object] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._etag = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="streamed-put", daemon=True)
        self._thread.start()

    def _body(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._chunks.get(timeout=self._idle_timeout)
            except queue.Empty:
                raise Cancelled(errno.ETIMEDOUT, "the writer went quiet") from None
            if chunk is _CANCEL:
                raise Cancelled(errno.ECANCELED, "aborted")
            if chunk is _END:
                return
            assert isinstance(chunk, bytes)
            yield chunk

    def _run(self) -> None:
        try:
            self._etag = self._put(self._body())
        except BaseException as exc:
            self._error = exc

    def _enqueue(self, item: bytes | object) -> None:
        while self._thread.is_alive():
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def send(self, chunk: bytes) -> None:
        self._enqueue(chunk)
        if not self._thread.is_alive():  # the request ended early: the server refused it
            self._thread.join()
            self._raise()
        self.size += len(chunk)

    def finish(self) -> str:
        self._enqueue(_END)
        self._thread.join()
        self._raise()
        return self._etag

    def cancel(self) -> None:
        self._enqueue(_CANCEL)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
        if not self._etag:
            raise OSError(errno.EIO, "the upload ended without an answer")
